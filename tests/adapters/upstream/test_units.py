"""The HTTP layer's units: the retry rules (tenacity), bearer tokens as httpx.Auth (single flight,
one re-send after a 401, a refused key not asked again), and token requests under the same host
limits, metrics and allowlist as any request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from examsync.adapters.errors import AuthError, HostNotAllowed, UpstreamError
from examsync.adapters.inspera.client import InsperaClient
from examsync.adapters.upstream.auth import BearerTokenAuth, Token
from examsync.adapters.upstream.client import HostLimits, UpstreamClient
from examsync.adapters.upstream.deadline import CallDeadline
from examsync.adapters.upstream.retry import AttemptFailed, RetryPolicy, retrying
from examsync.hosts import HostAllowlist
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators import inspera as inspera_sim
from examsync_sandbox.simulators.serving import Faults, SimServer

FAST = RetryPolicy(base_delay=0.001, max_delay=0.002)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def attempts_until_raised(policy: RetryPolicy, deadline: CallDeadline, failure: AttemptFailed) -> list[str]:
    """Attempts of a call whose every attempt fails with `failure`; returns the retries' reasons."""
    retried: list[str] = []
    with pytest.raises(AttemptFailed):
        async for attempt in retrying(policy, deadline, lambda f: retried.append(f.reason)):
            with attempt:
                raise failure
    return retried


async def test_a_retryable_failure_is_tried_at_most_max_attempts_times() -> None:
    deadline = CallDeadline(60.0)
    deadline.start()
    error = UpstreamError("fs", "get", "", 503)
    retried = await attempts_until_raised(FAST, deadline, AttemptFailed(error, "server_error", retryable=True))
    assert retried == ["server_error"] * 5  # six attempts


async def test_a_failure_that_may_not_be_retried_is_tried_once() -> None:
    deadline = CallDeadline(60.0)
    deadline.start()
    error = UpstreamError("inspera", "create_test", "", 503)  # a sent create
    assert await attempts_until_raised(FAST, deadline, AttemptFailed(error, "server_error", retryable=False)) == []


async def test_no_attempt_begins_whose_wait_would_pass_the_deadline() -> None:
    deadline = CallDeadline(0.5)
    deadline.start()
    error = UpstreamError("fs", "get", "rate limited", 429)
    # the server asks for 10 s (Retry-After): waiting would pass the call's deadline, so it ends now
    failure = AttemptFailed(error, "rate_limited", retryable=True, delay=10.0)
    assert await attempts_until_raised(FAST, deadline, failure) == []


async def test_retry_after_is_the_wait() -> None:
    deadline = CallDeadline(60.0)
    deadline.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    error = UpstreamError("fs", "get", "rate limited", 429)
    retried = await attempts_until_raised(
        RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.001),
        deadline,
        AttemptFailed(error, "rate_limited", retryable=True, delay=0.3),
    )
    assert retried == ["rate_limited"] and loop.time() - started >= 0.3


@pytest.fixture
async def inspera() -> AsyncIterator[tuple[Sandbox, inspera_sim.World]]:
    sandbox = Sandbox(seed=False)
    await sandbox.start()
    world: inspera_sim.World = sandbox.world("inspera")
    for n in range(10):
        world.add_user(f"user{n}@uio.no")
    yield sandbox, world
    await sandbox.stop()


async def test_a_token_request_takes_a_slot_of_the_host_like_any_request_and_never_deadlocks(
    inspera: tuple[Sandbox, inspera_sim.World],
) -> None:
    sandbox, world = inspera
    # one request at a time to the host: ten calls wait for one token, which itself needs the slot
    client = InsperaClient.direct(
        sandbox.url("inspera"), "uio.inspera.no", inspera_sim.API_KEY, limits=HostLimits(per_host=1), retry=FAST
    )
    before = sample("examsync_upstream_requests_total", system="inspera", operation="token", code="200")
    served = sandbox.server("inspera").calls["total"]
    try:
        found = await asyncio.wait_for(
            asyncio.gather(*(client.find_user(f"user{n}@uio.no") for n in range(10))), timeout=30
        )
    finally:
        await client.aclose()
    assert all(user_id is not None for user_id in found)
    assert world.token_requests == 1 and world.token_conflicts == 0  # single flight
    assert sandbox.server("inspera").calls["total"] - served == 11  # ten look-ups and the one token request
    assert sample("examsync_upstream_requests_total", system="inspera", operation="token", code="200") == before + 1


async def test_a_401_brings_one_new_token_and_one_resend_each_observed(
    inspera: tuple[Sandbox, inspera_sim.World],
) -> None:
    sandbox, world = inspera
    client = InsperaClient.direct(sandbox.url("inspera"), "uio.inspera.no", inspera_sim.API_KEY, retry=FAST)
    try:
        assert await client.find_user("user1@uio.no") is not None
        world.expire_tokens()
        unauthorized = sample("examsync_upstream_requests_total", system="inspera", operation="get_user", code="401")
        retries = sample("examsync_retries_total", system="inspera", reason="unauthorized")
        served = sandbox.server("inspera").calls["total"]
        assert await client.find_user("user2@uio.no") is not None
    finally:
        await client.aclose()
    assert world.token_requests == 2
    assert sandbox.server("inspera").calls["total"] - served == 3  # the refused send, the token request, the send again
    assert (
        sample("examsync_upstream_requests_total", system="inspera", operation="get_user", code="401")
        == unauthorized + 1
    )
    assert sample("examsync_retries_total", system="inspera", reason="unauthorized") == retries + 1


async def test_a_refused_api_key_is_not_asked_again(inspera: tuple[Sandbox, inspera_sim.World]) -> None:
    sandbox, world = inspera
    client = InsperaClient.direct(sandbox.url("inspera"), "uio.inspera.no", "wrong", retry=FAST)
    try:
        for _ in range(3):
            with pytest.raises(AuthError):
                await client.find_user("user1@uio.no")
    finally:
        await client.aclose()
    assert world.token_requests == 1


async def test_a_token_request_is_checked_against_the_allowlist(inspera: tuple[Sandbox, inspera_sim.World]) -> None:
    sandbox, world = inspera
    client = InsperaClient.direct(
        sandbox.url("inspera"),
        "uio.inspera.no",
        inspera_sim.API_KEY,
        retry=FAST,
        limits=HostLimits(allowlist=HostAllowlist.parse(["uio.inspera.no"])),
    )
    try:
        with pytest.raises(HostNotAllowed):
            await client.find_user("user1@uio.no")
    finally:
        await client.aclose()
    assert world.token_requests == 0


async def test_requests_go_through_the_proxy_the_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    async def handler(_: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/x", handler)
    proxy = SimServer(app, Faults())
    await proxy.start()
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = UpstreamClient(
        "fs", "http://fs.example.org", retry=FAST, limits=HostLimits(allowlist=HostAllowlist.parse(["fs.example.org"]))
    )
    try:
        assert (await client.request("GET", "/x", operation="get")).status_code == 200
    finally:
        await client.aclose()
        await proxy.stop()
    assert proxy.count("GET", "/x") == 1  # the proxy was asked for http://fs.example.org/x


class _Tokens(BearerTokenAuth):
    """Tokens t1, t2, ... with no token request (the server below knows only the latest)."""

    issued = 0

    async def fetch(self) -> Token:
        self.issued += 1
        return Token(f"t{self.issued}", renew_at=float("inf"))


async def test_the_body_of_a_401_is_not_read_before_the_resend() -> None:
    """The refused answer's body is let go unread: however large, it never reaches memory."""
    total = 64 * 1024 * 1024
    sent: list[int] = []
    ended = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") == "Bearer t2":
            return web.json_response({})
        response = web.StreamResponse(status=401, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        written = 0
        try:
            while written < total:
                await response.write(b" " * 65536)
                written += 65536
            await response.write_eof()
        except ConnectionError:
            pass  # the client closed the connection
        finally:
            sent.append(written)
            ended.set()
        return response

    app = web.Application()
    app.router.add_get("/x", handler)
    server = SimServer(app, Faults())
    await server.start()
    client = UpstreamClient("fs", server.url, retry=FAST)
    client.auth = _Tokens(client, "id", "secret")
    try:
        assert (await client.request("GET", "/x", operation="get")).status_code == 200
        await asyncio.wait_for(ended.wait(), timeout=60)
    finally:
        await client.aclose()
        await server.stop()
    assert len(sent) == 1 and sent[0] < total  # the 401's body was cut short, not read to its end
