"""Shared fixtures: the sandbox of simulated outside systems, started on loopback per test, the
host allowlist that lets in-process runs reach it (as `examsync sync --allow-loopback` would), the
WISEflow contract check every test passes through, a probe Institution on an empty sandbox, and the
audit history store's databases (SQLite, and one real PostgreSQL server for the whole test run)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from examsync import hosts
from examsync.adapters.upstream.defaults import DEFAULTS
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators.wiseflow import Exchange, exchange_recorders
from tests.support.pg_server import PostgresServer
from tests.support.probe import Probe
from tests.support.wiseflow_openapi import exchange_problems


@pytest.fixture(autouse=True)
def loopback_allowed() -> Iterator[hosts.HostAllowlist]:
    """In-process runs may call loopback (the simulators) and the default list; a test that wants
    another allowlist calls `hosts.configure` itself. The default (deny) is back after each test."""
    allowlist = hosts.HostAllowlist.parse((), allow_loopback=True)
    hosts.configure(allowlist)
    yield allowlist
    hosts.configure(hosts.HostAllowlist.parse(()))


@pytest.fixture(autouse=True)
def upstream_defaults() -> Iterator[None]:
    """HTTP defaults a command configured in process (from the settings it read) end with the test."""
    yield
    DEFAULTS.configured = None


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox() as sb:
        yield sb


@pytest.fixture
async def empty_sandbox() -> AsyncIterator[Sandbox]:
    """The sandbox with no seed data (a probe puts in what its test needs)."""
    async with Sandbox(seed=False) as sb:
        yield sb


@pytest.fixture
def probe(empty_sandbox: Sandbox) -> Probe:
    # a fresh Institution name per test: the metrics registry is process-wide
    return Probe(empty_sandbox, f"probe-{uuid.uuid4().hex[:8]}")


@pytest.fixture(autouse=True)
def wiseflow_contract(request: pytest.FixtureRequest) -> Iterator[list[Exchange]]:
    """Every request a test sends to the WISEflow simulator must be one WISEflow's OpenAPI
    description allows, and every answer one it documents, the fault layer's injected answers
    included. A test marked `wiseflow_refusals` sends requests the spec does not allow on purpose:
    each must have been refused. A test marked `wiseflow_hostile_answers` has the fault layer
    answer outside the spec on purpose: those injected answers alone go unchecked."""
    seen: list[Exchange] = []
    exchange_recorders.append(seen.append)
    try:
        yield seen
    finally:
        exchange_recorders.remove(seen.append)
    refusals = request.node.get_closest_marker("wiseflow_refusals") is not None
    hostile = request.node.get_closest_marker("wiseflow_hostile_answers") is not None
    problems = [p for x in seen for p in exchange_problems(x, refusals_expected=refusals, hostile_answers=hostile)]
    assert not problems, "WISEflow exchanges outside the spec:\n" + "\n".join(problems[:20])


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty audit store database of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()
