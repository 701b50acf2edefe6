"""Shared fixtures: the sandbox of simulated outside systems, started on loopback per test, and the
host allowlist that lets in-process runs reach it (as `examsync sync --allow-loopback` would)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from examsync import hosts
from examsync.sandbox.server import Sandbox


@pytest.fixture(autouse=True)
def loopback_allowed() -> Iterator[hosts.HostAllowlist]:
    """In-process runs may call loopback (the simulators) and the default list; a test that wants
    another allowlist calls `hosts.configure` itself. The default (deny) is back after each test."""
    allowlist = hosts.HostAllowlist.parse((), allow_loopback=True)
    hosts.configure(allowlist)
    yield allowlist
    hosts.configure(hosts.HostAllowlist.parse(()))


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox() as sb:
        yield sb
