"""fs-wiseflow against the sandbox: FS assessments become WISEflow flows."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime

from examsync.adapters.wiseflow.models import Purpose, Variant
from examsync.domain.fs import parse_assessment
from examsync.domain.wiseflow import desired_flow, fs_reference, marking_end
from examsync_sandbox.seed_nowf import CASES, EXPECTED, FLOW_TYPE, PEOPLE
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators.wiseflow import Flow, World
from tests.support.wiseflow_runs import FSWF, run, write_calls, writes


def wf(sb: Sandbox) -> World:
    world: World = sb.world("wiseflow")
    return world


def flows_of(sb: Sandbox, case: str) -> list[Flow]:
    return wf(sb).flows_with_reference(fs_reference(CASES[case]))


def outcome(result: object, case: str) -> tuple[str, str | None]:
    records = [r for r in result.audit if r["vurdId"] == CASES[case]]  # type: ignore[attr-defined]
    assert len(records) == 1
    return records[0]["action"], records[0]["reason"]


async def test_first_run_outcome_per_case(sandbox: Sandbox) -> None:
    result = await run(sandbox, "ntnu")
    got = {case: outcome(result, case) for case in EXPECTED}
    assert got == EXPECTED
    counts = result.counts(FSWF)
    assert counts["created"] == 3 and counts["updated"] == 2 and counts["unchanged"] == 1
    assert counts["missingResponsible"] == 1 and counts["failed"] == 1 and counts["skipped"] == 2


async def test_created_flow_has_title_type_managers_reference_and_dates(sandbox: Sandbox) -> None:
    await run(sandbox, "ntnu")
    [flow] = flows_of(sandbox, "ntnu-new")
    record = sandbox.world("fs").records[CASES["ntnu-new"]]
    a = parse_assessment(record)
    assert (flow.title, flow.subtitle, flow.type) == ("Objektorientert programmering", "TDT4100", FLOW_TYPE)
    assert flow.managers == CASES.managers[:2]
    source = flow.external_sources[0]
    assert source.reference == "fs-" + CASES["ntnu-new"].replace("+", "-").replace("/", "_").rstrip("=")
    assert source.description == "FS"
    assert flow.participation == {"start": int(a.start.timestamp()), "end": int(a.slutt.timestamp())}  # type: ignore[union-attr]
    assert a.sensurfrist is not None
    assert flow.marking == {"start": int(a.slutt.timestamp()), "end": marking_end(a.sensurfrist)}  # type: ignore[union-attr]


async def test_managers_only_those_found_and_fallback_when_none(sandbox: Sandbox) -> None:
    result = await run(sandbox, "ntnu")
    [one] = flows_of(sandbox, "ntnu-new-one-not-user")
    assert one.managers == [CASES.managers[2]]
    [none] = flows_of(sandbox, "ntnu-missing-responsible")
    assert none.managers == [CASES.fallback]
    rec = next(r for r in result.audit if r["vurdId"] == CASES["ntnu-missing-responsible"])
    assert rec["hovedansvarlige"] == {"found": 0, "total": 1}
    # one look-up per person per run: PEOPLE[0] is responsible for several assessments
    calls = sandbox.server("wiseflow").calls
    lookups = [k for k in calls if k.startswith("GET /user/userDataType/1/")]
    assert all(calls[k] == 1 for k in lookups)


async def test_updates_send_only_what_differs(sandbox: Sandbox) -> None:
    result = await run(sandbox, "ntnu", dry_run=True)
    plan = {p["key"]: p for p in result.report.as_json()["plan"]}
    assert plan[f"{FSWF}:{CASES['ntnu-update-title']}"]["fields"] == ["title"]
    assert plan[f"{FSWF}:{CASES['ntnu-update-dates']}"]["fields"] == ["participation"]
    created = plan[f"{FSWF}:{CASES['ntnu-new']}"]
    assert created["action"] == "create"
    # every field a create sends, the link's included
    assert created["fields"] == [
        "title",
        "subtitle",
        "type",
        "managers",
        "reference",
        "description",
        "participation",
        "marking",
    ]
    assert f"{FSWF}:{CASES['ntnu-unchanged']}" not in plan
    assert writes(sandbox) == 0  # dry run

    world = wf(sandbox)
    titled = world.flows[CASES.flows["ntnu-update-title"]]
    titled.term, titled.purpose, titled.variant = "Høst", Purpose.COURSE_WORK, Variant.REEXAMINATION
    await run(sandbox, "ntnu")
    assert titled.title == "Algoritmer og datastrukturer"
    # the PUT sent the whole metadata object back (the simulator clears what a PUT leaves out):
    # the other fields survive
    assert (titled.code, titled.term, titled.purpose, titled.variant) == (
        "TDT4120",
        "Høst",
        Purpose.COURSE_WORK,
        Variant.REEXAMINATION,
    )
    calls = write_calls(sandbox)
    assert calls[f"PUT /flows/{titled.id}/metadata"] == 1
    assert f"PATCH /flows/{titled.id}/dates" not in calls
    moved = world.flows[CASES.flows["ntnu-update-dates"]]
    assert calls[f"PATCH /flows/{moved.id}/dates"] == 1
    assert f"PUT /flows/{moved.id}/metadata" not in calls
    desired = desired_flow(parse_assessment(sandbox.world("fs").records[CASES["ntnu-update-dates"]]))
    assert moved.participation == dataclasses.asdict(desired.participation)


async def test_closed_flow_is_never_changed(sandbox: Sandbox) -> None:
    await run(sandbox, "ntnu")
    closed = wf(sandbox).flows[CASES.flows["ntnu-closed"]]
    assert closed.title == "Mekanikk 1 (avsluttet)"
    assert not [k for k in write_calls(sandbox) if f"/flows/{closed.id}/" in k]


async def test_conflict_touches_neither_flow(sandbox: Sandbox) -> None:
    await run(sandbox, "ntnu")
    assert len(flows_of(sandbox, "ntnu-conflict")) == 2
    ids = {f.id for f in flows_of(sandbox, "ntnu-conflict")}
    assert not [k for k in write_calls(sandbox) if any(f"/flows/{i}/" in k for i in ids)]


async def test_second_run_with_nothing_changed_writes_nothing(sandbox: Sandbox) -> None:
    first = await run(sandbox, "ntnu")
    before = writes(sandbox)
    assert before > 0
    second = await run(sandbox, "ntnu", first.state)
    assert writes(sandbox) == before, write_calls(sandbox)
    counts = second.counts(FSWF)
    assert counts["created"] == counts["updated"] == 0


async def test_fs_change_updates_flow_on_next_run(sandbox: Sandbox) -> None:
    first = await run(sandbox, "ntnu")
    fs = sandbox.world("fs")
    fs.touch(CASES["ntnu-new"], emnetittel="Objektorientert programmering (ny)", sensurfrist="2030-01-15")
    second = await run(sandbox, "ntnu", first.state)
    assert outcome(second, "ntnu-new") == ("updated", None)
    [flow] = flows_of(sandbox, "ntnu-new")
    assert flow.title == "Objektorientert programmering (ny)"
    assert flow.marking is not None and flow.marking["end"] == marking_end(date(2030, 1, 15))
    # 2030-01-15 23:59:59 in Oslo is 22:59:59 UTC (winter time)
    assert datetime.fromtimestamp(flow.marking["end"], UTC).hour == 22


async def test_reads_fs_for_wiseflow_assessments_and_leaks_no_personal_data(sandbox: Sandbox) -> None:
    result = await run(sandbox, "ntnu")
    queries = [q for q in sandbox.world("fs").list_queries if q["institusjonsnr"] == "194"]
    assert queries and all(q["eksamenssystem"] == "WISEFLOW" for q in queries)
    text = json.dumps(result.audit, ensure_ascii=False) + json.dumps(result.report.as_json(), ensure_ascii=False)
    for person in PEOPLE:
        for value in person.values():
            assert value not in text
    assert "stud0@stud.ntnu.no" not in text


async def test_one_flow_search_per_assessment_and_no_look_up_per_flow(sandbox: Sandbox) -> None:
    """The search answers state, titles, dates and references: reading a flow costs one request."""
    first = await run(sandbox, "ntnu")
    calls = sandbox.server("wiseflow").calls
    calls.clear()
    await run(sandbox, "ntnu")  # no state: every assessment is read again, all of them have a flow now
    searched = len(EXPECTED) - 1  # the assessment without candidates is never searched for
    assert calls["POST /flows/search"] == searched
    assert calls["total"] == searched + 1  # and the token
    assert first.counts(FSWF)["created"] == 3
