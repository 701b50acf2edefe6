"""A create whose answer is lost after the server stored it must never become two tests."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from examsync.adapters.errors import UpstreamError
from examsync.adapters.upstream.client import RetryPolicy, UpstreamClient
from examsync_sandbox.server import GRAVITEE_API_KEY, Sandbox
from examsync_sandbox.simulators import inspera as inspera_sim
from examsync_sandbox.simulators.serving import Faults
from tests.support.fleet import PIPELINE, SLOW, Fleet, NoSandbox
from tests.support.metric_samples import sample_value

CREATE = "POST /v1/test$"  # the create only, not the search (POST /v1/test/search)
BODY: dict[str, Any] = {"externalTestId": "MTIzfHxYWVoxMDA=", "title": "Et emne", "externalTest": True}


def gateway_client(sb: Sandbox, retry: RetryPolicy | None = None) -> UpstreamClient:
    return UpstreamClient("gravitee", sb.url("gravitee"), headers={"X-Gravitee-Api-Key": GRAVITEE_API_KEY}, retry=retry)


def creates(sb: Sandbox) -> int:
    return sb.server("gravitee").calls["POST /v1/test"]


def stored(sb: Sandbox) -> int:
    world: inspera_sim.World = sb.world("inspera")
    return len(world.by_external_id(BODY["externalTestId"]))


@pytest.mark.parametrize("action", ["commit-then-timeout", "commit-then-reset", "503"])
async def test_a_sent_write_is_not_retried(action: str) -> None:
    faults = Faults(once={CREATE: [action]}, slow_seconds=SLOW)
    async with Sandbox(faults={"gravitee": faults}, seed=False) as sb, gateway_client(sb) as client:
        with pytest.raises(UpstreamError):
            await client.request("POST", "/v1/test", operation="create_test", json=BODY, idempotent=False)
        assert creates(sb) == 1
        assert stored(sb) == (0 if action == "503" else 1)


async def test_a_retried_write_duplicates_which_is_why_creates_opt_out() -> None:
    # the default (idempotent) rules retry a timeout: the lost answer becomes a second test
    faults = Faults(once={CREATE: ["commit-then-timeout"]}, slow_seconds=SLOW)
    async with Sandbox(faults={"gravitee": faults}, seed=False) as sb, gateway_client(sb) as client:
        await client.request("POST", "/v1/test", operation="create_test", json=BODY)
        assert stored(sb) == 2


async def test_a_write_is_retried_after_429_and_before_sending() -> None:
    faults = Faults(once={CREATE: ["429"]}, retry_after=0.01)
    async with Sandbox(faults={"gravitee": faults}, seed=False) as sb, gateway_client(sb) as client:
        response = await client.request("POST", "/v1/test", operation="create_test", json=BODY, idempotent=False)
        assert response.status_code == 201
        assert creates(sb) == 2
        assert stored(sb) == 1


async def test_a_write_is_retried_when_the_connection_never_opened() -> None:
    async with Sandbox(seed=False) as sb:
        url = sb.url("gravitee")
    # the sandbox is stopped: nothing listens on its port, so the request is never sent
    retry = RetryPolicy(max_attempts=3, base_delay=0.01)
    attempts = {"system": "gravitee", "operation": "create_test", "code": "network"}
    before = sample_value("examsync_upstream_requests_total", attempts) or 0.0
    async with UpstreamClient("gravitee", url, retry=retry) as client:
        with pytest.raises(UpstreamError) as caught:
            await client.request("POST", "/v1/test", operation="create_test", json=BODY, idempotent=False)
        assert "ConnectError" in str(caught.value)
    assert sample_value("examsync_upstream_requests_total", attempts) == before + 3


@pytest.mark.parametrize(
    ("institution", "system", "action"),
    [
        ("uio", "inspera", "commit-then-timeout"),
        ("uio", "inspera", "commit-then-reset"),
        ("uib", "gravitee", "commit-then-timeout"),
        ("uib", "gravitee", "commit-then-reset"),
    ],
)
async def test_a_lost_create_answer_converges_without_a_duplicate(institution: str, system: str, action: str) -> None:
    faults = Faults(once={CREATE: [action]}, slow_seconds=SLOW)
    async with NoSandbox(faults={system: faults}) as sb:
        fleet = Fleet.of(sb)
        fleet.institutions = {institution: fleet.institutions[institution]}
        first = await fleet.run()
        assert faults.once[CREATE] == [], "the fault fired"
        await fleet.run()
        assert fleet.duplicates() == {}
        assert fleet.missing_or_stale() == {}
        counts = first[institution].pipelines[PIPELINE].counts.model_dump()
        assert counts["created"] + counts["failed"] > 0


async def test_a_create_stored_after_the_client_gave_up_is_not_duplicated() -> None:
    # slow, not lost: Inspera stores the create only after the client timed out and searched,
    # so a second POST in the same run would make two tests
    faults = Faults(once={CREATE: ["timeout-then-commit"]}, slow_seconds=SLOW)
    async with NoSandbox(faults={"inspera": faults}) as sb:
        fleet = Fleet.of(sb)
        fleet.institutions = {"uio": fleet.institutions["uio"]}
        await fleet.run()
        await asyncio.sleep(SLOW + 0.3)  # the slow create lands
        await fleet.run()
        assert fleet.duplicates() == {}


def test_httpx_names_the_unsent_failures() -> None:
    # the rule relies on these being the only errors raised before a request is written
    assert issubclass(httpx.ConnectTimeout, httpx.TimeoutException)
    assert issubclass(httpx.PoolTimeout, httpx.TimeoutException)
    assert issubclass(httpx.ConnectError, httpx.TransportError)
