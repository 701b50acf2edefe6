"""fs-inspera end to end over HTTP against the sandbox simulators (FS, Inspera, Gravitee)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from prometheus_client import REGISTRY

from examsync.adapters.upstream.client import RetryPolicy
from examsync.domain.fs import decode_id, encode_id
from examsync.state import InstitutionState
from examsync_sandbox import seed_no
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators import inspera as inspera_sim
from examsync_sandbox.simulators.serving import Faults
from tests.support.fs_inspera_runs import PIPELINE, fs_record, fs_world, own_institution, run

C = seed_no.CASES


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries without waiting, so exhausting them stays quick."""
    monkeypatch.setattr(RetryPolicy, "backoff", lambda self, attempt: 0.001)


def inspera(sb: Sandbox) -> inspera_sim.World:
    world: inspera_sim.World = sb.world("inspera")
    return world


def written(sb: Sandbox, fs_id: str) -> list[tuple[str, int, dict[str, Any]]]:
    return [w for w in inspera(sb).write_log if w[2].get("externalTestId") == fs_id]


@pytest.mark.parametrize("name", ["uio", "uib"])
async def test_every_seeded_case_ends_as_expected(sandbox: Sandbox, name: str) -> None:
    result = await run(sandbox, name)
    cases = {k: v for k, v in seed_no.EXPECTED.items() if k.startswith(f"{name}-")}
    assert len(cases) >= 8
    for case, expected in cases.items():
        assert result.outcome(C[case]) == expected, case
    counts = result.counts
    assert counts["discovered"] == len(cases)
    assert sum(counts[a] for a in ("created", "updated", "unchanged", "skipped", "failed")) == len(cases)
    for record in result.audit:
        assert record["key"] == f"{PIPELINE}:{record['vurdId']}"
        assert record["decodedVurdId"] == decode_id(record["vurdId"])
        assert record["success"] is (record["action"] != "failed")


async def test_target_ids_and_responsible_counts(sandbox: Sandbox) -> None:
    result = await run(sandbox, "uio")
    world = inspera(sandbox)
    for case in ("uio-update", "uio-unchanged", "uio-disconnected", "uio-new"):
        test_id = result.record(C[case])["testId"]
        assert world.tests[int(test_id)]["externalTestInfo"]["externalTestId"] == C[case]
    for case in ("uio-conflict", "uio-no-candidates", "uio-gone", "uio-missing-start"):
        assert "testId" not in result.record(C[case])
    assert result.record(C["uio-new"])["hovedansvarlige"] == {"found": 2, "total": 2}
    assert result.record(C["uio-new-one-not-user"])["hovedansvarlige"] == {"found": 1, "total": 2}
    assert result.record(C["uio-no-responsible"])["hovedansvarlige"] == {"found": 0, "total": 1}
    assert result.counts["missingResponsible"] == 1
    assert result.record(C["uio-new"])["title"] == "Introduksjon til programmering"


async def test_list_call_sends_all_five_params_percent_encoded(sandbox: Sandbox) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    await run(sandbox, "uio", now=lambda: now)
    fs = fs_world(sandbox)
    assert len(fs.raw_list_queries) == 1
    raw = fs.raw_list_queries[0]
    assert "+" not in raw and ":" not in raw and "%3A" in raw
    params = dict(parse_qsl(raw))
    assert set(params) == {"institusjonsnr", "datofra", "datotil", "eksamenssystem", "sistEndret"}
    assert params["institusjonsnr"] == "185" and params["eksamenssystem"] == "INSPERA"
    assert params["datofra"] == "2025-01-01"
    assert params["datotil"] == now.date().replace(year=now.year + 1).isoformat()
    assert datetime.fromisoformat(params["sistEndret"]) == now - timedelta(hours=72)


async def test_cutoff_uses_watermark_minus_overlap(sandbox: Sandbox) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    mark = now - timedelta(hours=2)
    state = InstitutionState()
    state.pipelines[PIPELINE] = state.pipeline(PIPELINE).model_copy(update={"watermark": mark})
    await run(sandbox, "uio", state, now=lambda: now)
    params = fs_world(sandbox).list_queries[-1]
    assert datetime.fromisoformat(params["sistEndret"]) == mark - timedelta(minutes=15)


async def test_detail_id_is_percent_encoded_without_safe_characters(sandbox: Sandbox) -> None:
    code = "TST>ÿÿ"  # its FS id holds `+`, `/` and `=`
    record = fs_record("186", code, arstall=2026)
    record["id"] = encode_id("186", code, versjonskode="1", vurdkombkode="SKR", arstall=2026, vurdtidkode="HØST")
    assert {"/", "+", "="} <= set(record["id"])
    fs_id = fs_world(sandbox).add(record)
    result = await run(sandbox, "uio", spec_changes=own_institution("186"))
    assert result.outcome(fs_id) == ("created", "MissingResponsible")
    assert sandbox.server("fs").count("GET", "/eksamen/INSPERA/") == 1


async def test_list_filters_system_institution_and_date(sandbox: Sandbox) -> None:
    fs = fs_world(sandbox)
    ours = fs.add(fs_record("186", "INSP1"))
    other_system = fs.add(fs_record("186", "WF1", eksamenssystem="WISEFLOW", sensursystem="WISEFLOW"))
    other_inst = fs.add(fs_record("187", "INSP1"))
    too_late = fs.add(fs_record("186", "LATE1", days=400))
    result = await run(sandbox, "uio", spec_changes=own_institution("186"))
    seen = {r["vurdId"] for r in result.audit}
    assert ours in seen
    assert not seen & {other_system, other_inst, too_late}


async def test_created_bodies(sandbox: Sandbox) -> None:
    await run(sandbox, "uio")
    world = inspera(sandbox)
    bodies = [body for _, _, body in world.write_log]
    assert bodies
    for body in bodies:
        assert not {"candidates", "graders", "committees"} & set(body)
        assert "[" not in body["title"] and "]" not in body["title"] and len(body["title"]) <= 500
        assert body["startTime"].endswith("Z") and body["endTime"].endswith("Z")
    ((_, _, dst),) = written(sandbox, C["uio-dst"])
    assert (dst["startTime"], dst["endTime"], dst["duration"]) == ("2026-10-24T23:30:00Z", "2026-10-25T02:30:00Z", 180)
    ((_, _, brackets),) = written(sandbox, C["uio-brackets"])
    assert brackets["title"] == "Europeisk historie 1750-1900 eksamen"
    ((_, _, long_title),) = written(sandbox, C["uio-long-title"])
    assert len(long_title["title"]) == 500
    ((_, _, new),) = written(sandbox, C["uio-new"])
    fs_new = fs_world(sandbox).records[C["uio-new"]]
    expected_ids = [world.users[r["feideId"]]["userId"] for r in fs_new["eksamensansvarlige"]]
    assert new["contributors"] == [{"userId": u, "role": "MAIN_RESPONSIBLE"} for u in expected_ids]
    assert (new["externalTestId"], new["variant"], new["subjectCode"], new["institution"]) == (
        C["uio-new"],
        "SKR",
        "INF1000",
        "185",
    )
    assert new["externalTest"] is True and new["externalSystem"] == "FS"
    ((_, _, lonely),) = written(sandbox, C["uio-no-responsible"])
    assert "contributors" not in lonely
    ((_, _, partial),) = written(sandbox, C["uio-new-one-not-user"])
    assert len(partial["contributors"]) == 1


async def test_update_only_differing_and_never_touch_disconnected_or_conflict(sandbox: Sandbox) -> None:
    world = inspera(sandbox)
    before = {k: dict(v) for k, v in world.tests.items()}
    result = await run(sandbox, "uio")
    updated_id = int(result.record(C["uio-update"])["testId"])
    assert world.tests[updated_id]["title"] == "Kalkulus"
    ops = {(op, test_id) for op, test_id, _ in world.write_log}
    untouched = [int(result.record(C[c])["testId"]) for c in ("uio-unchanged", "uio-disconnected")]
    untouched += [t["assessmentRunId"] for t in world.by_external_id(C["uio-conflict"])]
    assert len(untouched) == 4
    for test_id in untouched:
        assert not any(t == test_id for _, t in ops)
        assert world.tests[test_id] == before[test_id]
    # no GET of a test when the search had no hit: one GET per searched id with exactly one hit
    assert sandbox.server("inspera").count("GET", "/v1/test/") == 3  # update, unchanged, disconnected


async def test_user_lookups_are_cached_per_run(sandbox: Sandbox) -> None:
    await run(sandbox, "uio")
    server = sandbox.server("inspera")
    looked_up = [k for k in server.calls if k.startswith("GET /v1/users/external/FEIDE/")]
    assert len(looked_up) == 4  # three Inspera users and one person who is not
    assert all(server.calls[k] == 1 for k in looked_up)


async def test_second_run_with_nothing_changed_costs_one_fs_call(sandbox: Sandbox) -> None:
    # make the seeded failures succeed so the retry set is empty
    world = inspera(sandbox)
    dupes = world.by_external_id(C["uio-conflict"])
    del world.tests[dupes[1]["assessmentRunId"]]
    fs_world(sandbox).records[C["uio-missing-start"]]["start"] = "2026-12-01T09:00:00+01:00"
    first = await run(sandbox, "uio")
    assert first.counts["failed"] == 0 and first.state.pipeline(PIPELINE).retry == []
    fs_calls = sandbox.server("fs").calls["total"]
    inspera_calls = sandbox.server("inspera").calls["total"]
    writes = sum(world.writes.values())
    second = await run(sandbox, "uio", first.state)
    assert sandbox.server("fs").calls["total"] - fs_calls == 1
    assert sandbox.server("inspera").calls["total"] == inspera_calls
    assert sum(world.writes.values()) == writes
    assert second.counts["discovered"] == 0 and not second.report.failed


async def test_dry_run_plans_without_writing(sandbox: Sandbox) -> None:
    result = await run(sandbox, "uio", dry_run=True)
    assert sum(inspera(sandbox).writes.values()) == 0
    plan = {(p["key"], p["action"]): p["fields"] for p in result.report.as_json()["plan"]}
    assert plan[(f"{PIPELINE}:{C['uio-update']}", "update")] == ["title"]
    create = plan[(f"{PIPELINE}:{C['uio-new']}", "create")]
    assert {"externalTestId", "title", "startTime", "endTime", "duration", "contributors"} <= set(create)
    assert "contributors" not in plan[(f"{PIPELINE}:{C['uio-no-responsible']}", "create")]
    assert result.outcome(C["uio-new"]) == ("created", None)
    assert result.outcome(C["uio-update"]) == ("updated", None)
    assert result.counts["created"] == 11 and result.counts["updated"] == 1
    assert result.state.pipeline(PIPELINE).watermark is None  # DryRun keeps no progress
    uib = await run(sandbox, "uib", dry_run=True)
    uib_plan = {p["key"]: p["fields"] for p in uib.report.as_json()["plan"] if p["action"] == "update"}
    assert uib_plan == {f"{PIPELINE}:{C['uib-update']}": ["startTime"]}


async def test_gravitee_route_uses_api_key_and_no_token(sandbox: Sandbox) -> None:
    def gravitee_count() -> float:
        value = REGISTRY.get_sample_value(
            "examsync_upstream_requests_total", {"system": "gravitee", "operation": "search_test", "code": "200"}
        )
        return value or 0.0

    before = gravitee_count()
    result = await run(sandbox, "uib")
    assert result.counts["created"] == 3 and not result.report.failed
    assert inspera(sandbox).gateway_requests > 0
    assert inspera(sandbox).token_requests == 0
    assert sandbox.server("inspera").calls["total"] == 0
    assert gravitee_count() - before == 5  # one search per in-scope assessment


async def test_gravitee_wrong_key_stalls(sandbox: Sandbox) -> None:
    result = await run(sandbox, "uib", secret_changes={"uib-gravitee": {"apiKey": "wrong"}})
    assert result.report.is_stalled
    assert sum(inspera(sandbox).writes.values()) == 0
    messages = [f.message for f in result.report.failures()]
    assert any("gravitee" in m and "401" in m and "API_KEY_INVALID_KEY" in m for m in messages)


async def test_token_is_single_flight(sandbox: Sandbox) -> None:
    world = inspera(sandbox)
    result = await run(sandbox, "uio", spec_changes=lambda s: s["inspera"].update(concurrency=8))
    assert result.counts["created"] == 11
    assert world.token_requests == 1 and world.token_conflicts == 0


async def test_simulator_refuses_overlapping_token_requests(sandbox: Sandbox) -> None:
    # the control for the test above: parallel token requests do get a 409
    async with httpx.AsyncClient(base_url=sandbox.url("inspera")) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/authenticate/token/?grant_type=authorization_code&client_id=uio.inspera.no",
                    headers={"code": inspera_sim.API_KEY},
                )
                for _ in range(3)
            )
        )
    assert sorted(r.status_code for r in responses) == [200, 409, 409]
    conflict = next(r for r in responses if r.status_code == 409)
    assert conflict.json() == {"error": "Multiple tokens for user"}


async def test_reauthenticates_once_after_401_mid_run(sandbox: Sandbox) -> None:
    world = inspera(sandbox)

    expired: list[int] = []

    def expire_after_three_creates(pipeline: str, done: int, total: int) -> None:
        if not expired and world.writes["create"] >= 3:
            expired.append(world.writes["create"])
            world.expire_tokens()

    result = await run(sandbox, "uio", progress=expire_after_three_creates)
    assert expired and world.writes["create"] > expired[0]  # calls were made with the expired token
    assert world.token_requests == 2 and world.token_conflicts == 0
    assert {f.reason for f in result.report.failures()} == {"Conflict", "InvalidSourceData"}
    assert result.counts["created"] == 11


async def test_wrong_inspera_api_key_stalls(sandbox: Sandbox) -> None:
    result = await run(sandbox, "uio", secret_changes={"uio-inspera": {"apiKey": "wrong"}})
    assert result.report.is_stalled
    assert inspera(sandbox).token_requests == 1


async def test_fs_401_stalls_the_resource(sandbox: Sandbox) -> None:
    wrong = {"uio-fs": {"username": "examsync-fs", "password": "no"}}
    result = await run(sandbox, "uio", secret_changes=wrong)
    assert result.report.is_stalled
    (failure,) = result.report.failures()
    assert failure.key == PIPELINE and failure.reason == "UpstreamError" and "401" in failure.message
    assert result.state.pipeline(PIPELINE).watermark is None


async def test_list_failure_keeps_watermark_and_still_retries(fast_backoff: None) -> None:
    async with Sandbox(faults={"fs": Faults(once={"GET /eksamen/liste": ["503"] * 6})}) as sb:
        fs_id = C["uio-new"]
        mark = datetime.now(UTC) - timedelta(hours=1)
        state = InstitutionState()
        state.pipelines[PIPELINE] = state.pipeline(PIPELINE).model_copy(update={"watermark": mark, "retry": [fs_id]})
        result = await run(sb, "uio", state)
        pstate = result.state.pipeline(PIPELINE)
        assert pstate.watermark == mark
        assert "HTTP 503" in (result.report.pipelines[PIPELINE].fatal or "")
        assert result.outcome(fs_id) == ("created", None)
        assert result.counts["discovered"] == 1


async def test_failed_item_is_retried_next_run(sandbox: Sandbox, fast_backoff: None) -> None:
    fs_id = fs_world(sandbox).add(fs_record("186", "RETRY1"), changed=datetime.now(UTC) - timedelta(hours=2))
    sandbox.server("inspera").faults.once["POST /v1/test/search"] = ["503"] * 6
    first = await run(sandbox, "uio", spec_changes=own_institution("186"))
    assert first.outcome(fs_id) == ("failed", "UpstreamError")
    assert "503" in first.record(fs_id)["errorMessage"]
    assert first.state.pipeline(PIPELINE).retry == [fs_id]
    second = await run(sandbox, "uio", first.state, spec_changes=own_institution("186"))
    assert fs_world(sandbox).list_queries[-1]  # listed nothing new: the id came from the retry set
    assert second.outcome(fs_id) == ("created", "MissingResponsible")
    assert second.state.pipeline(PIPELINE).retry == []


async def test_create_that_failed_is_not_duplicated(sandbox: Sandbox, fast_backoff: None) -> None:
    fs_id = fs_world(sandbox).add(fs_record("186", "ONCE1"))
    # the create is stored, but its answer is lost: the client must find it rather than create again
    sandbox.server("inspera").faults.once["POST /v1/test"] = ["commit-then-reset"]
    result = await run(sandbox, "uio", spec_changes=own_institution("186"))
    assert result.outcome(fs_id) == ("created", "MissingResponsible")
    assert len(inspera(sandbox).by_external_id(fs_id)) == 1


async def test_watermark_picks_up_later_change(sandbox: Sandbox) -> None:
    first = await run(sandbox, "uio")
    assert first.state.pipeline(PIPELINE).watermark == first.report.started
    fs = fs_world(sandbox)
    fs.touch(C["uio-unchanged"], datetime.now(UTC), emnetittel="Kalkulus og lineær algebra II")
    second = await run(sandbox, "uio", first.state)
    assert second.outcome(C["uio-unchanged"]) == ("updated", None)
    assert C["uio-new"] not in {r["vurdId"] for r in second.audit}  # unchanged in FS, not listed again
    ((_, _, body),) = [
        w for w in inspera(sandbox).write_log if w[0] == "update" and w[2]["externalTestId"] == C["uio-unchanged"]
    ]
    assert body["title"] == "Kalkulus og lineær algebra II"


async def test_gone_and_invalid_records(sandbox: Sandbox) -> None:
    result = await run(sandbox, "uio")
    gone = result.record(C["uio-gone"])
    assert (gone["action"], gone["reason"], gone["success"]) == ("skipped", "Gone", True)
    bad = result.record(C["uio-missing-start"])
    assert bad["errorMessage"] == "FS record: missing field(s): start"
    assert result.state.pipeline(PIPELINE).retry.count(C["uio-missing-start"]) == 1
    assert C["uio-gone"] not in result.state.pipeline(PIPELINE).retry


async def test_calls_per_new_assessment(sandbox: Sandbox) -> None:
    fs = fs_world(sandbox)
    feide = [f"ansvarlig{i}@uio.example" for i in range(3)]
    for f in feide:
        inspera(sandbox).add_user(f)
    for i in range(30):
        fs.add(fs_record("186", f"NEW{i:03d}", responsibles=[feide[i % 3]], days=10 + i))
    result = await run(sandbox, "uio", spec_changes=own_institution("186"))
    assert result.counts["created"] == 30
    calls = sandbox.server("fs").calls["total"] + sandbox.server("inspera").calls["total"]
    assert calls / 30 <= 3.3


async def test_exam_date_window_handles_leap_day() -> None:
    from examsync.api.spec import FsSpec, SecretRef
    from examsync.pipelines.fs_source import exam_date_window

    fs = FsSpec(
        baseUrl="https://fsws.usit.no",
        institutionNumber="185",
        startYear=2025,
        credentialsSecretRef=SecretRef(name="x"),
    )
    assert exam_date_window(fs, date(2028, 2, 29)) == (date(2025, 1, 1), date(2029, 2, 28))


async def test_fs_simulator_reads_an_unencoded_offset_as_a_space(sandbox: Sandbox) -> None:
    # why the client encodes every value: FS would see `+01:00` as ` 01:00`
    from examsync_sandbox.simulators import fs as fs_sim

    auth = httpx.BasicAuth(fs_sim.USERNAME, fs_sim.PASSWORD)
    query = "institusjonsnr=185&datofra=2025-01-01&datotil=2027-01-01&eksamenssystem=INSPERA"
    async with httpx.AsyncClient(base_url=sandbox.url("fs"), auth=auth) as client:
        bad = await client.get(f"/eksamen/liste?{query}&sistEndret=2026-11-20T10:15:00+01:00")
        good = await client.get(f"/eksamen/liste?{query}&sistEndret=2026-11-20T10%3A15%3A00%2B01%3A00")
        missing = await client.get(f"/eksamen/liste?{query}")
    assert (bad.status_code, good.status_code, missing.status_code) == (400, 200, 400)
    assert isinstance(good.json()["eksamener"], list)
