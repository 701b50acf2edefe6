"""Faults injected into FS, Inspera and Gravitee over HTTP: runs converge, nothing is lost or
duplicated, and every failure is in the report with its reason."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from examsync_sandbox.simulators import fs as fs_sim
from examsync_sandbox.simulators import inspera as inspera_sim
from examsync_sandbox.simulators.serving import Faults
from tests.support.fleet import PIPELINE, SLOW, Fleet, NoSandbox, assert_failures_visible

MAX_RUNS = 3


async def converge(fleet: Fleet, runs: int = MAX_RUNS) -> int:
    """Run until converged; after every run: no duplicate, every gap reported. Returns runs used."""
    for n in range(1, runs + 1):
        reports = await fleet.run()
        assert fleet.duplicates() == {}, f"run {n}"
        assert_failures_visible(fleet, reports)
        if fleet.converged():
            return n
    raise AssertionError(f"not converged after {runs} runs: {len(fleet.missing_or_stale())} item(s) missing or stale")


def noisy(seed: int) -> Faults:
    return Faults(error_rate=0.10, rate_limit_rate=0.05, retry_after=0.01, latency=0.001, jitter=0.01, seed=seed)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
async def test_5xx_429_and_jitter_everywhere_converge_within_three_runs(seed: int) -> None:
    # Creates see the faults too: a create answered 503 is sent again only after a search found
    # no test, so a stored-but-unanswered create is never duplicated.
    faults = {"fs": noisy(seed), "inspera": noisy(seed + 10), "gravitee": noisy(seed + 20)}
    async with NoSandbox(faults=faults) as sb:
        fleet = Fleet.of(sb)
        await converge(fleet, runs=3)
        served = sum(sb.server(s).calls["total"] for s in faults)
        assert served > 60  # the faults had something to bite on
        assert len(fleet.expected()) >= 15


async def test_slow_answers_past_the_client_timeout_are_retried() -> None:
    slow_fs = Faults(slow_rate=0.15, slow_seconds=SLOW, seed=4)
    slow_inspera = Faults(
        slow_seconds=SLOW,
        once={
            "GET /v1/test/": ["timeout"],
            "POST /v1/test/search": ["timeout", "timeout"],
            "GET /v1/users/": ["timeout"],
            "POST /authenticate/token/": ["timeout"],
        },
    )
    async with NoSandbox(faults={"fs": slow_fs, "inspera": slow_inspera}) as sb:
        fleet = Fleet.of(sb)
        await converge(fleet)
        assert all(not actions for actions in slow_inspera.once.values())


async def test_connection_resets_are_retried() -> None:
    faults = {s: Faults(reset_rate=0.1, seed=5 + i) for i, s in enumerate(("fs", "inspera", "gravitee"))}
    async with NoSandbox(faults=faults) as sb:
        await converge(Fleet.of(sb))


@pytest.mark.parametrize(
    ("system", "call"),
    [
        ("fs", "GET /eksamen/INSPERA/"),
        ("inspera", "GET /v1/users/"),
        ("inspera", "POST /v1/test/search"),
        ("inspera", "GET /v1/test/"),
        ("gravitee", "POST /v1/test/search"),
    ],
)
async def test_a_malformed_answer_fails_its_items_and_the_run_goes_on(system: str, call: str) -> None:
    faults = Faults(once={call: ["malformed"]})
    async with NoSandbox(faults={system: faults}) as sb:
        fleet = Fleet.of(sb)
        first = await fleet.run()
        assert faults.once[call] == []
        failures = [f for r in first.values() for f in r.pipelines[PIPELINE].failures]
        odd = [f for f in failures if "not JSON" in f.message or "unexpected response shape" in f.message]
        # one item, or every item waiting on the same look-up (users are looked up once per run)
        assert 1 <= len(odd) <= (8 if call == "GET /v1/users/" else 1)
        assert all(f.reason in ("UpstreamError", "InvalidSourceData") for f in odd)
        assert all(f.key.startswith(f"{PIPELINE}:") for f in odd)
        # the other items were all handled in the same run
        discovered = sum(r.pipelines[PIPELINE].counts.discovered_total for r in first.values())
        handled = sum(sum(r.pipelines[PIPELINE].actions.values()) for r in first.values())
        assert handled == discovered > 20
        assert_failures_visible(fleet, first)
        await fleet.run()
        assert fleet.converged()


async def test_a_malformed_fs_list_keeps_the_watermark_and_reports_the_pipeline() -> None:
    faults = Faults(once={"GET /eksamen/liste": ["malformed"]})
    async with NoSandbox(faults={"fs": faults}) as sb:
        fleet = Fleet.of(sb)
        fleet.institutions = {"uio": fleet.institutions["uio"]}
        first = await fleet.run()
        failures = first["uio"].pipelines[PIPELINE].failures
        assert [(f.key, f.reason) for f in failures] == [(PIPELINE, "UpstreamError")]
        assert fleet.states["uio"].pipeline(PIPELINE).watermark is None
        await fleet.run()
        assert fleet.converged()


async def test_an_expired_token_mid_run_is_renewed_once() -> None:
    async with NoSandbox() as sb:
        world: inspera_sim.World = sb.world("inspera")
        fleet = Fleet.of(sb)
        fleet.institutions = {"uio": fleet.institutions["uio"]}

        def expire_after_five(pipeline: str, done: int, total: int) -> None:
            if done == 5:
                world.expire_tokens()

        reports = await fleet.run(progress=expire_after_five)
        assert world.token_requests == 2
        assert world.token_conflicts == 0
        assert sb.server("inspera").count("GET", "/v1/") + sb.server("inspera").count("POST", "/v1/") > 5
        reasons = {f.reason for f in reports["uio"].pipelines[PIPELINE].failures}
        assert "UpstreamError" not in reasons
        assert fleet.converged()


async def test_parallel_items_never_request_overlapping_tokens() -> None:
    async with NoSandbox() as sb:
        world: inspera_sim.World = sb.world("inspera")
        # the simulator does answer 409 to overlapping token requests
        async with httpx.AsyncClient(base_url=sb.url("inspera")) as raw:
            answers = await asyncio.gather(
                *(
                    raw.post(
                        "/authenticate/token/",
                        params={"grant_type": "authorization_code", "client_id": "x"},
                        headers={"code": inspera_sim.API_KEY},
                    )
                    for _ in range(2)
                )
            )
        assert sorted(a.status_code for a in answers) == [200, 409]
        conflicts, requests = world.token_conflicts, world.token_requests
        fleet = Fleet.of(sb)
        fleet.institutions = {"uio": fleet.institutions["uio"]}
        await fleet.run()
        assert world.token_conflicts == conflicts
        assert world.token_requests == requests + 1
        assert fleet.converged()


async def test_fs_down_opens_the_breaker_keeps_progress_and_recovers() -> None:
    fs_faults = Faults()
    async with NoSandbox(faults={"fs": fs_faults}) as sb:
        fs: fs_sim.World = sb.world("fs")
        fleet = Fleet.of(sb)
        fleet.institutions = {"uio": fleet.institutions["uio"]}
        await fleet.run()
        assert fleet.converged()
        before = fleet.states["uio"].pipeline(PIPELINE)
        assert before.watermark is not None

        # FS goes down; meanwhile an assessment changes; a retry set is pending from earlier trouble
        ids = [i for i, r in fs.records.items() if r.get("institusjonsnr") == "185"]
        fleet.states["uio"].pipelines[PIPELINE] = before.model_copy(update={"retry": ids})
        changed = next(iter(fleet.expected()))
        fs.touch(changed, emnetittel="Nytt navn etter nedetid")
        fs_faults.error_rate = 1.0
        calls = sb.server("fs").calls["total"]
        down = (await fleet.run())["uio"].pipelines[PIPELINE]
        fs_calls = sb.server("fs").calls["total"] - calls
        attempts = 6  # RetryPolicy.max_attempts
        # the list call, the items in flight (8), and those started while the breaker counted
        # its 5 consecutive failures: each with its retries, and then no more
        assert fs_calls <= attempts * (5 + 8)
        assert fs_calls < attempts * len(ids)
        assert down.fatal is not None and "HTTP 503" in down.fatal
        pipeline_failures = [f for f in down.failures if f.key == PIPELINE]
        assert len(pipeline_failures) == 1 and pipeline_failures[0].reason == "UpstreamError"
        after = fleet.states["uio"].pipeline(PIPELINE)
        assert after.watermark == before.watermark
        assert set(after.retry) == set(ids)

        fs_faults.error_rate = 0.0
        recovered = (await fleet.run())["uio"].pipelines[PIPELINE]
        assert recovered.fatal is None
        assert fleet.converged()
        world: inspera_sim.World = sb.world("inspera")
        assert world.by_external_id(changed)[0]["title"] == "Nytt navn etter nedetid"


async def test_fs_down_on_a_first_run_reports_one_failure() -> None:
    async with NoSandbox(faults={"fs": Faults(error_rate=1.0)}) as sb:
        fleet = Fleet.of(sb)
        fleet.institutions = {"uio": fleet.institutions["uio"]}
        report = (await fleet.run())["uio"]
        pipeline = report.pipelines[PIPELINE]
        assert [(f.key, f.reason) for f in pipeline.failures] == [(PIPELINE, "UpstreamError")]
        assert "HTTP 503" in pipeline.failures[0].message
        assert report.failed
        assert sb.server("fs").calls["total"] == 6
        assert fleet.states["uio"].pipeline(PIPELINE).watermark is None


async def test_a_record_the_mapping_cannot_compute_fails_only_its_item() -> None:
    async with NoSandbox() as sb:
        fs: fs_sim.World = sb.world("fs")
        fleet = Fleet.of(sb)
        fleet.institutions = {"uio": fleet.institutions["uio"]}
        odd = sorted(fleet.expected())[0]
        fs.touch(odd, varighetMinutter=10**12, slutt=None)
        report = (await fleet.run())["uio"].pipelines[PIPELINE]
        assert (f"{PIPELINE}:{odd}", "InvalidSourceData") in {(f.key, f.reason) for f in report.failures}
