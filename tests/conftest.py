"""Shared fixtures: the sandbox of simulated outside systems, started on loopback per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from examsync.sandbox.server import Sandbox


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox() as sb:
        yield sb
