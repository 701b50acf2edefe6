"""Fixtures for the observability tests: a sandbox with no seed data and the probe pipeline."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from obs_helpers import Probe, ProbePipeline

from examsync.pipelines.runner import FACTORIES
from examsync.sandbox.server import Sandbox


@pytest.fixture
def probe_pipeline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from examsync.pipelines import registry  # noqa: F401  (real factories first, then ours over them)

    monkeypatch.setitem(FACTORIES, "fs-inspera", ProbePipeline)
    yield


@pytest.fixture
async def obs_sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(seed=False) as sb:
        yield sb


@pytest.fixture
def probe(obs_sandbox: Sandbox, probe_pipeline: None) -> Probe:
    # a fresh Institution name per test: the metrics registry is process-wide
    return Probe(obs_sandbox, f"probe-{uuid.uuid4().hex[:8]}")
