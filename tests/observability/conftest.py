"""Fixtures for the observability tests: a sandbox with no seed data and a probe Institution."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from obs_helpers import Probe

from examsync_sandbox.server import Sandbox


@pytest.fixture
async def obs_sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(seed=False) as sb:
        yield sb


@pytest.fixture
def probe(obs_sandbox: Sandbox) -> Probe:
    # a fresh Institution name per test: the metrics registry is process-wide
    return Probe(obs_sandbox, f"probe-{uuid.uuid4().hex[:8]}")
