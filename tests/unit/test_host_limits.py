"""Per-host limits are shared by every client in the process, whichever Institution it serves."""

from __future__ import annotations

import asyncio

from aiohttp import web

from examsync.adapters.errors import HostNotAllowed
from examsync.adapters.http import HostLimits, UpstreamClient
from examsync.sandbox.simulator import Faults, SimServer


async def _server() -> tuple[SimServer, list[int]]:
    in_flight = [0, 0]  # now, peak

    async def handler(_: web.Request) -> web.Response:
        in_flight[0] += 1
        in_flight[1] = max(in_flight[1], in_flight[0])
        await asyncio.sleep(0.02)
        in_flight[0] -= 1
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/x", handler)
    server = SimServer(app, Faults())
    await server.start()
    return server, in_flight


async def test_concurrency_cap_is_shared_by_clients_of_one_host() -> None:
    server, in_flight = await _server()
    limits = HostLimits(per_host=3)
    clients = [UpstreamClient("fs", server.url, limits=limits) for _ in range(4)]  # four "Institutions"
    try:
        await asyncio.gather(*(c.request("GET", "/x", operation="get") for c in clients for _ in range(5)))
    finally:
        for c in clients:
            await c.aclose()
        await server.stop()
    assert in_flight[1] == 3


async def test_rate_per_host_spreads_requests() -> None:
    server, _ = await _server()
    limits = HostLimits(per_host=50, rate_per_host=10)
    client = UpstreamClient("fs", server.url, limits=limits)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        await asyncio.gather(*(client.request("GET", "/x", operation="get") for _ in range(20)))
    finally:
        await client.aclose()
        await server.stop()
    # 20 requests at 10/s cannot all be sent within the first second
    assert loop.time() - started >= 1.0


async def test_allowlist_refuses_other_hosts() -> None:
    limits = HostLimits(allowed_hosts=frozenset({"fsws.usit.no"}))
    client = UpstreamClient("fs", "https://evil.example", limits=limits)
    try:
        await client.request("GET", "/x", operation="get")
    except HostNotAllowed as exc:
        assert "evil.example" in str(exc)
    else:
        raise AssertionError("a host outside the allowlist was called")
    finally:
        await client.aclose()
