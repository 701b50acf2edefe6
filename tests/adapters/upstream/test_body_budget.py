"""The budget of bodies being read (`adapters/upstream/body.BodyBudget`): every body buffers a small
allowance freely; past it, a body holds one of a few large-body slots (at most one per host), waits
for one within its call's deadline, and lets go however reading ends."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from aiohttp import web

from examsync.adapters.errors import UpstreamError
from examsync.adapters.upstream.body import BODY_BUDGET, BodyBudget, BodyRefused, read_body
from examsync.adapters.upstream.client import RetryPolicy, UpstreamClient
from examsync_sandbox.simulators.serving import Faults, SimServer

KIB = 1024
MIB = 1024 * KIB


async def settled() -> None:
    """Let every task that can run, run (no clock involved)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_small_bodies_never_wait_and_large_ones_wait_for_a_slot_one_per_host() -> None:
    budget = BodyBudget(free_bytes=100, large_slots=2, per_host=1)
    async with budget.lease("a:1") as a1, budget.lease("a:1") as a2, budget.lease("b:1") as b, budget.lease("c:1") as c:
        await a1.allow(500)
        assert budget.held == 1
        await a2.allow(100)  # within the allowance: no slot, no wait
        second_from_a = asyncio.create_task(a2.allow(500))
        await settled()
        assert not second_from_a.done()  # host a has its one slot in use
        await b.allow(500)  # another host: the process's second slot
        from_c = asyncio.create_task(c.allow(500))
        await settled()
        assert not from_c.done() and budget.held == 2  # the process's slots are all in use

        a1.release()  # a body of host a is read: a waiting body takes the freed slot
        await settled()
        assert from_c.done() != second_from_a.done() and budget.held == 2
        b.release()
        await settled()
        assert from_c.done() and second_from_a.done() and budget.held == 2
    assert budget.held == 0 and budget.most_held == 2


async def test_a_slot_is_released_when_its_body_fails_or_is_cancelled_and_a_cancelled_wait_holds_none() -> None:
    budget = BodyBudget(free_bytes=100, large_slots=1, per_host=1)
    with pytest.raises(BodyRefused):  # reading failed (the cap): the slot goes with it
        async with budget.lease("a:1") as lease:
            await lease.allow(500)
            raise BodyRefused("larger than the cap")
    assert budget.held == 0

    holding = asyncio.Event()

    async def read_forever(host: str) -> None:
        async with budget.lease(host) as lease:
            await lease.allow(500)
            holding.set()
            await asyncio.Event().wait()  # a trickle that never ends

    reader = asyncio.create_task(read_forever("a:1"))
    await holding.wait()
    waiter = asyncio.create_task(read_forever("b:1"))  # holds b's slot, waits for the process's
    await settled()
    assert budget.held == 1 and not waiter.done()
    waiter.cancel()  # its call's deadline passed while it waited
    await asyncio.gather(waiter, return_exceptions=True)
    reader.cancel()  # the deadline of the holder
    await asyncio.gather(reader, return_exceptions=True)
    assert budget.held == 0
    # nothing is left held: host b's slot and the process's are free
    async with budget.lease("b:1") as lease:
        await asyncio.wait_for(lease.allow(500), timeout=30)
        assert budget.held == 1


async def test_bodies_read_at_once_hold_no_more_than_the_slots_and_large_ones_are_read_whole() -> None:
    # two hosts, each streaming 3 MiB answers: too large for /huge's cap, within /fits's
    servers = [
        SimServer(
            web.Application(), Faults(huge_bytes=3 * MIB, always={"GET /huge": "huge-stream", "GET /fits": "huge"})
        )
        for _ in range(2)
    ]
    for server in servers:
        await server.start()
    budget = BodyBudget(free_bytes=64 * KIB, large_slots=2, per_host=1)

    async def read(url: str, limit: int) -> int | str:
        async with httpx.AsyncClient() as client, client.stream("GET", url) as response:
            try:
                return len(await read_body(response, limit, budget))
            except BodyRefused as exc:
                return str(exc)

    try:
        results = await asyncio.gather(
            *(read(f"{s.url}/huge", 2 * MIB) for s in servers for _ in range(4)),
            *(read(f"{s.url}/fits", 4 * MIB) for s in servers),
        )
    finally:
        for server in servers:
            await server.stop()
    assert results[:8] == ["response body larger than 2 MiB"] * 8
    assert results[8:] == [3 * MIB, 3 * MIB]  # a large body that fits is read whole, in turn
    assert budget.held == 0 and 1 <= budget.most_held <= 2


async def test_waiting_for_a_slot_ends_at_the_calls_deadline() -> None:
    server = SimServer(web.Application(), Faults(huge_bytes=2 * MIB, always={"GET /large": "huge"}))
    await server.start()
    host = f"127.0.0.1:{server.port}"
    client = UpstreamClient("fs", server.url, retry=RetryPolicy(max_attempts=1, max_elapsed=1.0))
    try:
        async with BODY_BUDGET.lease(host) as other:
            await other.allow(2 * MIB)  # another body of this host holds its slot throughout
            with pytest.raises(UpstreamError, match="the call's deadline passed"):
                await client.request("GET", "/large", operation="get")
        # once the slot is free, the same answer is read
        assert len((await client.request("GET", "/large", operation="get")).content) == 2 * MIB
    finally:
        await client.aclose()
        await server.stop()
    assert BODY_BUDGET.held == 0
