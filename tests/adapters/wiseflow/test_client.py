"""The WISEflow client against the simulator: token, re-auth, both shapes, rate limits."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from examsync.adapters.errors import AuthError
from examsync.adapters.wiseflow.client import WiseflowClient, limiter_under, shared_limiters
from examsync.adapters.wiseflow.models import FlowSearch, SearchMetadata
from examsync.domain.wiseflow import ACTIVE_STATES, FlowState
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators.wiseflow import World

CLIENT, SECRET = "test-client", "test-secret"
NOT_ACTIVATED = FlowSearch(metadata=SearchMetadata(states=[FlowState.NOT_ACTIVATED]))


def world(sb: Sandbox) -> World:
    w: World = sb.world("wiseflow")
    return w


@pytest.fixture
def wf_world(sandbox: Sandbox) -> World:
    w = world(sandbox)
    w.add_client(CLIENT, SECRET, "test")
    return w


async def test_one_token_for_many_concurrent_calls_and_reauth_once_on_401(sandbox: Sandbox, wf_world: World) -> None:
    flow = wf_world.add_flow("Eksamen", "EX1", licence="test", references=["fs-abc"])
    client = WiseflowClient(sandbox.url("wiseflow"), CLIENT, SECRET)
    try:
        sources = await asyncio.gather(*(client.external_sources(flow.id) for _ in range(20)))
        assert {s.reference for found in sources for s in found} == {"fs-abc"}
        assert wf_world.tokens_issued == 1
        wf_world.tokens.clear()  # every token revoked: the next call gets 401 and re-authenticates
        assert await client.external_sources(flow.id) != []
        assert wf_world.tokens_issued == 2
    finally:
        await client.aclose()


class _HoldFirst(httpx.AsyncHTTPTransport):
    """A real transport that holds the first request to one path until the test lets it go."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.arrived = asyncio.Event()
        self.go = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == self.path and not self.arrived.is_set():
            self.arrived.set()
            await self.go.wait()
        return await super().handle_async_request(request)


async def test_a_late_401_for_an_old_token_does_not_fetch_another(sandbox: Sandbox, wf_world: World) -> None:
    flow = wf_world.add_flow("Eksamen", "EX1", licence="test", references=["fs-abc"])
    hold = _HoldFirst(f"/flows/{flow.id}/external-sources")
    client = WiseflowClient(sandbox.url("wiseflow"), CLIENT, SECRET, transport=hold)
    try:
        await client.search_flows(NOT_ACTIVATED)  # the first token
        wf_world.tokens.clear()  # revoked
        held = asyncio.create_task(client.external_sources(flow.id))  # sent with the revoked token, held
        await hold.arrived.wait()
        await client.search_flows(NOT_ACTIVATED)  # 401, renews: the second token
        assert wf_world.tokens_issued == 2
        hold.go.set()  # now the held request's 401 arrives, for a token already replaced
        assert await held != []
        assert wf_world.tokens_issued == 2
    finally:
        await client.aclose()


async def test_wrong_credentials_are_an_auth_error(sandbox: Sandbox, wf_world: World) -> None:
    client = WiseflowClient(sandbox.url("wiseflow"), CLIENT, "wrong")
    try:
        # WISEflow documents 400 invalid_client for refused credentials: Unauthorized all the same
        with pytest.raises(AuthError) as caught:
            await client.search_flows(NOT_ACTIVATED)
        assert caught.value.status == 401 and "invalid_client" in str(caught.value)
        assert "wrong" not in str(caught.value)
    finally:
        await client.aclose()


async def test_envelope_and_bare_shapes_and_paging(sandbox: Sandbox, wf_world: World) -> None:
    states = list(FlowState)
    for i in range(230):
        wf_world.add_flow(f"Flyt {i}", "", state=states[i % 6], licence="test")
    wf_world.add_flow("Other licence", "", licence="elsewhere")
    client = WiseflowClient(sandbox.url("wiseflow"), CLIENT, SECRET)
    try:
        active = await client.search_flows(FlowSearch(metadata=SearchMetadata(states=list(ACTIVE_STATES))))
        assert len(active) == sum(1 for i in range(230) if i % 6 < 4)  # an envelope, two pages
        assert sandbox.server("wiseflow").count("POST", "/flows/search") == 2
        assert {f.state for f in active} == set(ACTIVE_STATES)
        assert await client.find_user(1, "nobody@example.org") is None  # a bare 404
    finally:
        await client.aclose()


async def test_clients_of_one_credential_share_their_limiters() -> None:
    a = shared_limiters("http://127.0.0.1:1", "same")
    b = shared_limiters("http://127.0.0.1:1", "same")
    c = shared_limiters("http://127.0.0.1:1", "other")
    assert a is b and a is not c
    assert [lim.max_rate / lim.time_period for lim in a] == pytest.approx([190.0, 4800 / 60])


def test_limiter_bucket_plus_rate_stays_under_the_limit() -> None:
    for limit, window in ((200, 1.0), (5000, 60.0), (30, 1.0)):
        lim = limiter_under(limit, window, burst=max(1, limit // 20))
        # worst case in any window: a full bucket at once plus what drains in during the window
        assert lim.max_rate + lim.max_rate / lim.time_period * window <= limit


async def test_burst_stays_under_the_servers_limit(sandbox: Sandbox, wf_world: World) -> None:
    wf_world.per_second = 40  # a low artificial limit so a burst is cheap to test
    client = WiseflowClient(sandbox.url("wiseflow"), CLIENT, SECRET, per_second=30)
    try:
        await asyncio.gather(*(client.find_user(1, "nobody") for _ in range(60)))
    finally:
        await client.aclose()
    assert wf_world.rate_limited == 0
    assert wf_world.peak_per_second() <= 40


async def test_without_the_limiter_the_server_says_429_and_the_client_waits(sandbox: Sandbox, wf_world: World) -> None:
    wf_world.per_second = 40
    client = WiseflowClient(sandbox.url("wiseflow"), CLIENT, SECRET, per_second=100_000, per_minute=1_000_000)
    try:
        results = await asyncio.gather(*(client.find_user(1, "nobody") for _ in range(60)))
    finally:
        await client.aclose()
    assert wf_world.rate_limited > 0  # the control: the burst does exceed the limit
    assert results == [None] * 60  # every call answered after waiting for RateLimit-Reset
