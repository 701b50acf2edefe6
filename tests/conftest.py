"""Shared fixtures: the sandbox of simulated outside systems, started on loopback per test, the
host allowlist that lets in-process runs reach it (as `examsync sync --allow-loopback` would), and
the WISEflow contract check every test passes through."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from contract.wiseflow_openapi import exchange_problems
from examsync import hosts
from examsync.adapters.upstream.defaults import DEFAULTS
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators.wiseflow import Exchange, exchange_recorders


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
