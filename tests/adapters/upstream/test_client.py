"""The shared HTTP layer: per-host limits shared by every client, deadlines, safe error messages."""

from __future__ import annotations

import asyncio
import gzip
import json

import pytest
from aiohttp import web

from examsync import hosts
from examsync.adapters.errors import ClientError, HostNotAllowed, InvalidResponse, UpstreamError
from examsync.adapters.upstream.client import HostLimits, RetryPolicy, UpstreamClient
from examsync.adapters.upstream.error_text import MaskingContext
from examsync.hosts import HostAllowlist
from examsync_sandbox.simulators.serving import Faults, SimServer


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
    limits = HostLimits(allowlist=HostAllowlist.parse(["fsws.usit.no"]))
    client = UpstreamClient("fs", "https://evil.example", limits=limits)
    try:
        await client.request("GET", "/x", operation="get")
    except HostNotAllowed as exc:
        assert "evil.example" in str(exc)
    else:
        raise AssertionError("a host outside the allowlist was called")
    finally:
        await client.aclose()


async def test_http_layer_refuses_loopback_by_default() -> None:
    """The process-wide allowlist is the default list: the sandbox on loopback is not called."""
    hosts.configure(HostAllowlist.parse(()))
    server, _ = await _server()
    client = UpstreamClient("fs", server.url)
    try:
        with pytest.raises(HostNotAllowed, match="loopback"):
            await client.request("GET", "/x", operation="get")
    finally:
        await client.aclose()
        await server.stop()
    assert server.count("GET", "/x") == 0


async def test_http_layer_checks_the_final_url_of_every_request() -> None:
    """An absolute URL handed to a client (a link from an answer, say) is checked where it goes,
    not where the client's base URL points."""
    allowed, _ = await _server()
    other, _ = await _server()
    limits = HostLimits(allowlist=HostAllowlist.parse([f"127.0.0.1:{allowed.port}"]))
    client = UpstreamClient("fs", allowed.url, limits=limits)
    try:
        assert (await client.request("GET", "/x", operation="get")).status_code == 200
        with pytest.raises(HostNotAllowed, match=f"127.0.0.1:{other.port}"):
            await client.request("GET", f"{other.url}/x", operation="get")
    finally:
        await client.aclose()
        await allowed.stop()
        await other.stop()
    assert allowed.count("GET", "/x") == 1
    assert other.count("GET", "/x") == 0


async def _app_server(status: int, body: dict[str, object], delay: float = 0.0) -> SimServer:
    async def handler(_: web.Request) -> web.Response:
        await asyncio.sleep(delay)
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_route("*", "/x", handler)
    server = SimServer(app, Faults())
    await server.start()
    return server


async def test_a_call_ends_by_its_deadline_even_while_waiting_for_an_answer() -> None:
    server = await _app_server(200, {}, delay=1.5)
    client = UpstreamClient("fs", server.url, retry=RetryPolicy(max_elapsed=0.3, base_delay=0.01))
    try:
        # the answer would come after 1.5 s, within the 30 s read timeout, but past the call's budget
        with pytest.raises(UpstreamError, match="timed out"):
            await client.request("GET", "/x", operation="get")
    finally:
        await client.aclose()
        await server.stop()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Inspera: `error` is sometimes a sentence; it is a message, masked
        ({"error": "User Kari Nordmann (kari@uio.no) not found"}, "HTTP 400 Bad Request: User *** *** not found"),
        # WISEflow's envelope: message, code and the per-field errors
        (
            {
                "success": False,
                "data": None,
                "error": {
                    "code": "unknown_manager",
                    "message": "Manager Ola Hansen is unknown",
                    "errors": [{"reason": "managers", "message": "user 01019012345"}],
                },
            },
            "HTTP 400 Bad Request: Manager *** is unknown; managers: user *** (unknown_manager)",
        ),
        # WISEflow's envelope as its OpenAPI description has it: `code` is an integer (the HTTP
        # status), never taken for a code; the message and each error's reason and message are
        (
            {
                "success": False,
                "data": None,
                "error": {
                    "code": 400,
                    "message": "Title refused for kari@uio.no",
                    "errors": [{"reason": "title", "message": "too long"}],
                },
            },
            "HTTP 400 Bad Request: Title refused for ***; title: too long",
        ),
        # OAuth
        (
            {"error": "invalid_client", "error_description": "client of per@uib.no is disabled"},
            "HTTP 400 Bad Request: client of *** is disabled (invalid_client)",
        ),
        # Gravitee: the message only repeats the reason phrase
        ({"error": "API_KEY_INVALID_KEY", "message": "Bad Request"}, "HTTP 400 Bad Request: API_KEY_INVALID_KEY"),
        # a "code" that is a national identity number or an e-mail is no code
        ({"error": "01019012345"}, "HTTP 400 Bad Request: ***"),
        ({"error": {"code": "kari@uio.no"}}, "HTTP 400 Bad Request: ***"),
        (
            {"error": "E4711", "message": "title refused by the naming policy"},
            "HTTP 400 Bad Request: title refused by the naming policy (E4711)",
        ),
    ],
)
async def test_error_text_keeps_codes_and_masked_messages(body: dict[str, object], expected: str) -> None:
    server = await _app_server(400, body)
    client = UpstreamClient("wiseflow", server.url)
    try:
        with pytest.raises(ClientError) as err:
            await client.request("POST", "/x", operation="create")
    finally:
        await client.aclose()
        await server.stop()
    people = MaskingContext()
    people.add("Kari Nordmann", "Ola Hansen")
    assert err.value.describe(people) == f"wiseflow create: {expected}"
    for personal in ("kari@uio.no", "per@uib.no", "01019012345"):
        assert personal not in str(err.value)


async def test_a_compressed_answer_is_capped_by_what_it_decompresses_to() -> None:
    bomb = gzip.compress(b" " * (20 * 1024 * 1024))  # 20 KiB that inflate to 20 MiB
    small = gzip.compress(b'{"ok": true}')
    rows = [{"id": f"{n:07d}", "tittel": "x" * (n % 50)} for n in range(100_000)]
    large_json = json.dumps(rows).encode()  # about 5 MiB, in many inflated pieces
    large = gzip.compress(large_json)

    async def handler(request: web.Request) -> web.Response:
        body = {"/bomb": bomb, "/large": large}.get(request.path, small)
        return web.Response(body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    app = web.Application()
    app.router.add_get("/{name}", handler)
    server = SimServer(app, Faults())
    await server.start()
    client = UpstreamClient("fs", server.url)
    try:
        assert (await client.request("GET", "/small", operation="get")).json() == {"ok": True}
        assert (await client.request("GET", "/large", operation="get")).content == large_json  # read whole
        with pytest.raises(InvalidResponse, match="larger than 16 MiB"):
            await client.request("GET", "/bomb", operation="get")
        assert server.calls["total"] == 3  # not retried
    finally:
        await client.aclose()
        await server.stop()
