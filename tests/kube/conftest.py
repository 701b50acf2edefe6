"""Fixtures of the operator tests: the Kubernetes API emulator on loopback, and operators against it
(tests.support.kube_harness)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.kube_harness import Cluster, Emulator, Operator, OperatorFactory, serve


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with serve(Emulator()) as served:
        yield served


@pytest.fixture
def operator(cluster: Cluster) -> OperatorFactory:
    def make(**overrides: Any) -> Operator:
        return Operator(cluster, **overrides)

    return make
