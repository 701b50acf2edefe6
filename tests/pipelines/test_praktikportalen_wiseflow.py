"""praktikportalen-wiseflow against the sandbox: supervisors become external assessors."""

from __future__ import annotations

import hashlib
import json

import httpx

from examsync.domain.wiseflow import (
    ASSESSOR_FIELDS,
    SOURCE_SYNC_FIELDS,
    USER_FIELDS,
    assessor_key,
    legacy_assessor_key,
    pp_reference,
)
from examsync_sandbox import seed_dk
from examsync_sandbox.seed_dk import CASES, PERIODS, PRAKTIKPORTAL_ID, SUPERVISORS, USER_DATA_TYPE
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators.wiseflow import World
from tests.support.wiseflow_runs import PP, run, write_calls, writes


def wf(sb: Sandbox) -> World:
    world: World = sb.world("wiseflow")
    return world


def user_id(sb: Sandbox, name: str) -> int | None:
    user = wf(sb).user_by_external_id(USER_DATA_TYPE, SUPERVISORS[name][0])
    return user.id if user else None


def assessor_users(sb: Sandbox, flow: str) -> set[int]:
    return {a.user_id for a in wf(sb).flows[CASES[flow]].assessors}


def key(flow: str, period: str) -> str:
    return f"{PP}:{CASES[flow]}:{PERIODS[period]}"


async def test_first_run_imports_supervisors_as_external_assessors(sandbox: Sandbox) -> None:
    result = await run(sandbox, "ucx")
    counts = result.counts(PP)
    assert counts == {
        "flows": 4,
        "supervisorsCreated": 5,
        "supervisorsUpdated": 1,
        "assessorsAdded": 6,
        "assessorsRemoved": 0,
        "failed": 2,
    }
    ids = {n: user_id(sandbox, n) for n in SUPERVISORS}
    assert ids["signe"] is None  # no e-mail: not imported
    assert assessor_users(sandbox, "spring-activated") == {ids[n] for n in ("mette", "jens", "anders", "karen")}
    assert assessor_users(sandbox, "autumn-not-activated") == {ids["karen"], ids["peter"]}
    assert assessor_users(sandbox, "third-started") == {ids["lone"]}
    assert assessor_users(sandbox, "concluded") == set()
    # one user per supervisor even in two periods; imported users carry role, e-mail and the id
    karen = wf(sandbox).users[ids["karen"]]  # type: ignore[index]
    assert karen.emails == [SUPERVISORS["karen"][3]] and karen.roles == [seed_dk.ASSESSOR_ROLE]
    assert sum(1 for u in wf(sandbox).users.values() if u.external_ids.get(USER_DATA_TYPE)) == 6
    # every assessor added as an external assessor
    types = {a.assessor_type_id for f in wf(sandbox).flows.values() for a in f.assessors}
    assert types == {seed_dk.ASSESSOR_TYPE}


async def test_outcomes_are_reported_on_each_source(sandbox: Sandbox) -> None:
    result = await run(sandbox, "ucx")
    failures = {f.key: f for f in result.pipeline(PP).failures}
    spring = failures[key("spring-activated", "spring")]
    assert spring.reason == "InvalidSourceData"
    assert spring.message == "supervisor 3 of 5 has no e-mail"
    assert failures[key("unknown-period", "unknown")].reason == "UnknownPeriod"
    assert len(failures) == 2
    world = wf(sandbox)
    src = {
        name: world.source(CASES[name], pp_reference(PERIODS[p]))
        for name, p in (
            ("spring-activated", "spring"),
            ("autumn-not-activated", "autumn"),
            ("third-started", "third"),
            ("unknown-period", "unknown"),
            ("concluded", "spring"),
        )
    }
    assert {n: s.syncs for n, s in src.items() if s} == {
        "spring-activated": ["fail"],
        "autumn-not-activated": ["done"],
        "third-started": ["done"],
        "unknown-period": ["fail"],
        "concluded": [],
    }
    assert result.report.failed  # a failed item makes the run fail


async def test_second_run_with_nothing_changed_writes_nothing(sandbox: Sandbox) -> None:
    first = await run(sandbox, "ucx")
    before = writes(sandbox)
    assert before > 0
    second = await run(sandbox, "ucx", first.state)
    assert writes(sandbox) == before, write_calls(sandbox)
    counts = second.counts(PP)
    assert counts["supervisorsCreated"] == counts["supervisorsUpdated"] == counts["assessorsAdded"] == 0
    assert counts["flows"] == 4 and counts["failed"] == 2  # the same two are still wrong


async def test_changed_supervisor_is_written_again_and_only_that_one(sandbox: Sandbox) -> None:
    first = await run(sandbox, "ucx")
    period = sandbox.world("praktikportalen").period(PRAKTIKPORTAL_ID, PERIODS["spring"])
    period["supervisors"][1]["email"] = "jens.kragh@ny-skole.dk"
    before = write_calls(sandbox)
    second = await run(sandbox, "ucx", first.state)
    assert second.counts(PP)["supervisorsUpdated"] == 1
    assert second.counts(PP)["supervisorsCreated"] == 0
    jens = wf(sandbox).users[user_id(sandbox, "jens")]  # type: ignore[index]
    assert jens.emails == ["jens.kragh@ny-skole.dk"]
    after = write_calls(sandbox)
    assert after["POST /license/user"] - before["POST /license/user"] == 1


async def test_state_keeps_digests_hashed_never_personal_data(sandbox: Sandbox) -> None:
    first = await run(sandbox, "ucx")
    dumped = first.state.model_dump_json()
    digests = first.state.pipeline(PP).digests
    assert len([k for k in digests if k.startswith("user-v2:")]) == 6
    assert len([k for k in digests if k.startswith("assessor-v2:")]) == 6
    for pid, firstname, lastname, email in SUPERVISORS.values():
        for value in (pid, firstname, lastname, email):
            if value:
                assert value not in dumped
        # keyed: a plain hash of a guessed praktikportal id finds nobody in the state
        plain = hashlib.sha256(f"{PRAKTIKPORTAL_ID}\x1f{USER_DATA_TYPE}\x1f{pid}".encode()).hexdigest()
        assert plain[:40] not in dumped
    for flow in wf(sandbox).flows.values():
        for a in flow.assessors:
            assert legacy_assessor_key(flow.id, a.user_id).removeprefix("assessor:") not in dumped


async def test_no_personal_data_in_audit_or_report(sandbox: Sandbox) -> None:
    result = await run(sandbox, "ucx")
    text = json.dumps(result.audit, ensure_ascii=False) + json.dumps(result.report.as_json(), ensure_ascii=False)
    for pid, firstname, lastname, email in SUPERVISORS.values():
        for value in (pid, firstname, lastname, email):
            if value:
                assert value not in text


async def test_one_audit_record_per_supervisor(sandbox: Sandbox) -> None:
    result = await run(sandbox, "ucx")
    per_supervisor = [r for r in result.audit if r["submodule"] == "supervisor"]
    assert len(per_supervisor) == 5 + 2 + 1
    spring = [r for r in per_supervisor if r["key"] == key("spring-activated", "spring")]
    assert [r["supervisor"]["position"] for r in spring] == [1, 2, 3, 4, 5]
    actions = [r["action"] for r in spring]
    # Karen is in two periods: whichever item gets to her first creates her user
    assert actions[:4] == ["created", "created", "failed", "updated"] and actions[4] in ("created", "updated")
    assert spring[2]["reason"] == "InvalidSourceData" and spring[2]["success"] is False
    assert all(r["testId"] == str(CASES["spring-activated"]) for r in spring)
    items = [r for r in result.audit if r["submodule"] != "supervisor"]
    assert len(items) == 4


async def test_left_supervisor_removed_only_from_not_activated_flow_and_only_if_ours(
    sandbox: Sandbox,
) -> None:
    first = await run(sandbox, "ucx")
    pp = sandbox.world("praktikportalen")
    world = wf(sandbox)
    # someone the manager added by hand on the state-0 flow: never ours to remove
    manual = world.add_user("Hand", last_name="Added", emails=["hand@ucx.dk"], licence=seed_dk.LICENCE)
    world.add_assessor(world.flows[CASES["autumn-not-activated"]], manual, seed_dk.ASSESSOR_TYPE)
    autumn = pp.period(PRAKTIKPORTAL_ID, PERIODS["autumn"])
    autumn["supervisors"] = [s for s in autumn["supervisors"] if s["praktikportalId"] != SUPERVISORS["peter"][0]]
    spring = pp.period(PRAKTIKPORTAL_ID, PERIODS["spring"])
    spring["supervisors"] = [s for s in spring["supervisors"] if s["praktikportalId"] != SUPERVISORS["mette"][0]]
    second = await run(sandbox, "ucx", first.state)
    assert second.counts(PP)["assessorsRemoved"] == 1
    assert assessor_users(sandbox, "autumn-not-activated") == {user_id(sandbox, "karen"), manual.id}
    # the activated flow keeps the supervisor who left
    assert user_id(sandbox, "mette") in assessor_users(sandbox, "spring-activated")
    # the supervisor's marker is gone with the assessor: a third run removes nothing more
    third = await run(sandbox, "ucx", second.state)
    assert third.counts(PP)["assessorsRemoved"] == 0


async def test_dry_run_writes_nothing_and_plans_with_wiseflow_field_names(sandbox: Sandbox) -> None:
    result = await run(sandbox, "ucx", dry_run=True)
    assert writes(sandbox) == 0
    assert result.report.mode == "DryRun"
    counts = result.counts(PP)
    assert counts["supervisorsCreated"] == 5 and counts["assessorsAdded"] == 6
    plan = result.report.as_json()["plan"]
    spring = [p for p in plan if p["key"] == key("spring-activated", "spring")]
    assert {"action": "create", "fields": list(USER_FIELDS)} in [
        {"action": p["action"], "fields": p["fields"]} for p in spring
    ]
    assert sum(1 for p in spring if p["fields"] == list(ASSESSOR_FIELDS)) == 3
    assert any(p["fields"] == list(SOURCE_SYNC_FIELDS) for p in spring)
    assert {p["pipeline"] for p in plan} == {PP}
    # the supervisor in two periods is planned as one user, not two
    assert sum(1 for p in plan if p["fields"] == list(USER_FIELDS)) == 6


async def test_every_imported_supervisor_can_get_an_access_token(sandbox: Sandbox) -> None:
    """Praktikportalen (not examsync) asks WISEflow for each supervisor's access link: every
    supervisor examsync imported has what that call needs."""
    await run(sandbox, "ucx")
    world = wf(sandbox)
    imported = [u for u in world.users.values() if u.external_ids.get(USER_DATA_TYPE)]
    assert len(imported) == 6
    bare = world.add_user("No", last_name="Mail", licence=seed_dk.LICENCE)
    async with httpx.AsyncClient(base_url=sandbox.url("wiseflow")) as http:
        form = {
            "client_id": seed_dk.CLIENT_ID,
            "client_secret": seed_dk.CLIENT_SECRET,
            "grant_type": "client_credentials",
        }
        auth = {"Authorization": f"Bearer {(await http.post('/oauth2/token', data=form)).json()['access_token']}"}
        request = {"expirationDate": 1_900_000_000, "sendEmail": False}
        for user in imported:
            answer = await http.post(f"/user/{user.id}/access-token", json=request, headers=auth)
            assert answer.status_code == 200 and answer.json()["token"], answer.text
            assert answer.json()["expires"] == 1_900_000_000
        # the endpoint really refuses a user without e-mail (why such a supervisor is not imported)
        refused = await http.post(f"/user/{bare.id}/access-token", json=request, headers=auth)
        assert refused.status_code == 400
    assert len(world.access_tokens) == 6


async def test_unknown_period_is_retried_and_reported_once(sandbox: Sandbox) -> None:
    first = await run(sandbox, "ucx")
    sandbox.world("praktikportalen").add_period(
        PRAKTIKPORTAL_ID,
        PERIODS["unknown"],
        title="Praktik 4",
        start="2027-01-01",
        end="2027-02-01",
        supervisors=[seed_dk.supervisor("peter")],
    )
    second = await run(sandbox, "ucx", first.state)
    src = wf(sandbox).source(CASES["unknown-period"], pp_reference(PERIODS["unknown"]))
    assert src is not None and src.syncs == ["fail", "done"]
    assert second.counts(PP)["failed"] == 1  # only the supervisor without e-mail is left


async def test_a_refused_user_fails_that_supervisor_in_every_period_and_the_rest_goes_on(
    sandbox: Sandbox,
) -> None:
    karen = SUPERVISORS["karen"][0]

    def refuse(body: dict[str, object]) -> int | None:
        ids = body.get("externalIds")
        return 400 if isinstance(ids, list) and ids[0].get("value") == karen else None

    wf(sandbox).refuse_user_write = refuse
    first = await run(sandbox, "ucx")
    counts = first.counts(PP)
    assert counts["failed"] == 4  # the two seeded failures and Karen in both her periods
    assert counts["supervisorsCreated"] == 4 and counts["assessorsAdded"] == 4
    messages = {f.key: f.message for f in first.pipeline(PP).failures}
    assert "supervisor 1 of 2: wiseflow write user: HTTP 400" in messages[key("autumn-not-activated", "autumn")]
    assert user_id(sandbox, "karen") is None
    src = wf(sandbox).source(CASES["autumn-not-activated"], pp_reference(PERIODS["autumn"]))
    assert src is not None and src.syncs == ["fail"]

    wf(sandbox).refuse_user_write = None
    second = await run(sandbox, "ucx", first.state)
    assert second.counts(PP)["supervisorsCreated"] == 1 and second.counts(PP)["assessorsAdded"] == 2
    assert second.counts(PP)["failed"] == 2
    assert src.syncs == ["fail", "done"]


async def test_flows_counts_flows_not_periods(sandbox: Sandbox) -> None:
    # a second period on one flow: five (flow, period) items on four flows
    world = wf(sandbox)
    world.link(world.flows[CASES["third-started"]], pp_reference(PERIODS["autumn"]), "Praktik")
    result = await run(sandbox, "ucx")
    items = [r for r in result.audit if r["submodule"] != "supervisor"]
    assert len(items) == 5
    assert result.counts(PP)["flows"] == 4
    dry = await run(sandbox, "ucx", dry_run=True)
    assert dry.counts(PP)["flows"] == 4


async def test_state_of_the_unkeyed_format_is_carried_over_once(sandbox: Sandbox) -> None:
    first = await run(sandbox, "ucx")
    secret = seed_dk.CLIENT_SECRET.encode()
    digests = first.state.pipeline(PP).digests
    # rewrite the state as the earlier, unkeyed format had it
    legacy: dict[str, str] = {}
    for flow in wf(sandbox).flows.values():
        for a in flow.assessors:
            if assessor_key(secret, flow.id, a.user_id) in digests:
                legacy[legacy_assessor_key(flow.id, a.user_id)] = "added"
    for pid, *_ in SUPERVISORS.values():
        plain = hashlib.sha256(f"{PRAKTIKPORTAL_ID}\x1f{USER_DATA_TYPE}\x1f{pid}".encode()).hexdigest()
        legacy["user:" + plain[:40]] = hashlib.sha256(pid.encode()).hexdigest()
    assert len([k for k in legacy if k.startswith("assessor:")]) == 6
    digests.clear()
    digests.update(legacy)

    autumn = sandbox.world("praktikportalen").period(PRAKTIKPORTAL_ID, PERIODS["autumn"])
    autumn["supervisors"] = [s for s in autumn["supervisors"] if s["praktikportalId"] != SUPERVISORS["peter"][0]]
    second = await run(sandbox, "ucx", first.state)
    counts = second.counts(PP)
    # the marker of the earlier format still says who this integration added
    assert counts["assessorsRemoved"] == 1
    assert user_id(sandbox, "peter") not in assessor_users(sandbox, "autumn-not-activated")
    # users are written once more (their digests are gone), none created twice
    assert counts["supervisorsCreated"] == 0 and counts["supervisorsUpdated"] == 5
    after = second.state.pipeline(PP).digests
    assert not [k for k in after if k.startswith(("user:", "assessor:"))]
    assert len([k for k in after if k.startswith("assessor-v2:")]) == 5
    before = writes(sandbox)
    third = await run(sandbox, "ucx", second.state)
    assert writes(sandbox) == before, write_calls(sandbox)
    assert third.counts(PP)["assessorsRemoved"] == 0


async def test_assessor_stored_but_answer_lost_is_not_sent_again(sandbox: Sandbox) -> None:
    path = f"/flows/{CASES['third-started']}/assessors"
    sandbox.server("wiseflow").faults.once[f"POST {path}$"] = ["commit-then-reset"]
    result = await run(sandbox, "ucx")
    assert sandbox.server("wiseflow").count("POST", path) == 1  # not resent
    counts = result.counts(PP)
    # found on the flow after the error: counted as added, not failed
    assert counts["assessorsAdded"] == 6 and counts["failed"] == 2
    assert assessor_users(sandbox, "third-started") == {user_id(sandbox, "lone")}
    assert len([k for k in result.state.pipeline(PP).digests if k.startswith("assessor-v2:")]) == 6
    src = wf(sandbox).source(CASES["third-started"], pp_reference(PERIODS["third"]))
    assert src is not None and src.syncs == ["done"]


async def test_user_stored_but_answer_lost_is_not_sent_again(sandbox: Sandbox) -> None:
    sandbox.server("wiseflow").faults.once["POST /license/user$"] = ["commit-then-reset"]
    first = await run(sandbox, "ucx")
    assert sandbox.server("wiseflow").count("POST", "/license/user") == 6  # six users, none resent
    assert first.counts(PP)["failed"] > 2
    # the next run finds the user by its look-up and writes it once more
    second = await run(sandbox, "ucx", first.state)
    assert second.counts(PP)["failed"] == 2 and second.counts(PP)["supervisorsCreated"] == 0
    assert sum(1 for u in wf(sandbox).users.values() if u.external_ids.get(USER_DATA_TYPE)) == 6


async def test_unexpected_period_shape_names_the_field_not_the_value(sandbox: Sandbox) -> None:
    period = sandbox.world("praktikportalen").period(PRAKTIKPORTAL_ID, PERIODS["third"])
    period["supervisors"][0]["studentCount"] = "TS-10089 has two"
    result = await run(sandbox, "ucx")
    failure = next(f for f in result.pipeline(PP).failures if f.key == key("third-started", "third"))
    assert failure.reason == "UpstreamError"
    assert failure.message.endswith("unexpected response shape at supervisors.studentCount")
    assert "TS-10089" not in json.dumps(result.report.as_json())


async def test_discovery_reads_sources_only_of_flows_that_take_part(sandbox: Sandbox) -> None:
    """One search lists the active flows with their references; only flows carrying a
    Praktikportalen reference have their source list read (for the state of their sources)."""
    await run(sandbox, "ucx")
    calls = sandbox.server("wiseflow").calls
    assert calls["POST /flows/search"] == 1
    listed = {k for k in calls if k.startswith("GET /flows/") and k.endswith("/external-sources")}
    taking_part = ("spring-activated", "autumn-not-activated", "third-started", "unknown-period")
    assert listed == {f"GET /flows/{CASES[name]}/external-sources" for name in taking_part}
    assert not [k for k in calls if k.startswith("GET /flow/")]
