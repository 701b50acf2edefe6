"""Status written by the earlier, dict-based version (captured in fixtures/status_earlier_version.json,
as the API server stores it) loads into the typed model whole, and the typed model writes the very
same status for the same runs: the wire format did not change."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from examsync.api.spec import Mode, PipelineName
from examsync.api.status import InstitutionStatus
from examsync.domain.outcomes import (
    Action,
    FsCounts,
    ItemResult,
    PlannedWrite,
    PraktikportalenCounts,
    Reason,
    WriteAction,
)
from examsync.kube import status as st
from examsync.report import InstitutionReport, PipelineReport
from examsync.state import InstitutionState, PendingCreate, PipelineState

EARLIER = json.loads((Path(__file__).parent / "fixtures/status_earlier_version.json").read_text(encoding="utf-8"))
T0 = datetime(2026, 11, 23, 6, 0, 0, 250000, tzinfo=UTC)
FS, PP = PipelineName.FS_INSPERA, PipelineName.PRAKTIKPORTALEN_WISEFLOW
STATE = InstitutionState(
    pipelines={
        FS: PipelineState(
            watermark=T0, retry=["D", "E"], pending={"X": PendingCreate(title="Fysikk", since=T0)}, digests={"k1": "d1"}
        ),
        PP: PipelineState(digests={"assessor:abc": "9019"}),
    }
)


def report(started: datetime, mode: Mode = Mode.APPLY) -> InstitutionReport:
    """The run the fixture's statuses were written for."""
    r = InstitutionReport(
        name="uio", namespace="examsync", mode=mode, run_id=f"run{started.hour}", started=started, enabled=[FS, PP]
    )
    fs = PipelineReport(name=FS, counts=FsCounts(), started=started, duration=1.5)
    fs.counts.add_discovered(5)
    items = [
        ItemResult(
            "fs-inspera:A",
            "A",
            Action.CREATED,
            Reason.MISSING_RESPONSIBLE,
            writes=(PlannedWrite(WriteAction.CREATE, ("title", "startTime")),),
        ),
        ItemResult("fs-inspera:B", "B", Action.UPDATED, writes=(PlannedWrite(WriteAction.UPDATE, ("title",)),)),
        ItemResult("fs-inspera:C", "C", Action.SKIPPED, Reason.GONE, "FS answered 404"),
        ItemResult(
            "fs-inspera:D", "D", Action.FAILED, Reason.INVALID_SOURCE_DATA, "FS record: missing field(s): start"
        ),
        ItemResult("fs-inspera:E", "E", Action.FAILED, Reason.CONFLICT, "2 Inspera tests carry this externalId"),
    ]
    for i, item in enumerate(items):
        fs.add(item, started + timedelta(milliseconds=100 * i))
        if mode == Mode.DRY_RUN:
            fs.add_plan(item)
    pp = PipelineReport(name=PP, counts=PraktikportalenCounts(), started=started, duration=0.7)
    pp.counts.add_discovered(2)
    pp.add(
        ItemResult(
            "praktikportalen-wiseflow:9019:4711",
            "9019:4711",
            Action.UPDATED,
            counts=PraktikportalenCounts(supervisorsCreated=2, assessorsAdded=2),
        ),
        started,
    )
    pp.add(
        ItemResult(
            "praktikportalen-wiseflow:9026:9999",
            "9026:9999",
            Action.FAILED,
            Reason.UNKNOWN_PERIOD,
            "Praktikportalen has no period 9999 under this licence",
            counts=PraktikportalenCounts(),
        ),
        started + timedelta(seconds=1),
    )
    r.pipelines = {FS: fs, PP: pp}
    return r


def replay() -> dict[str, dict[str, Any]]:
    """The fixture's steps, written by this version."""
    out = {}
    s = InstitutionStatus.load({"kopf": {"dummy": "2026-11-23T05:59:00Z"}})
    s = st.started(s, generation=3, trigger="New", run_id="run6", now=T0)
    out["started"] = s.wire()
    s = st.finished(
        s,
        report(T0),
        state=STATE,
        generation=3,
        next_run=T0 + timedelta(hours=6, minutes=12),
        requested_at=None,
        now=T0 + timedelta(seconds=2),
    )
    out["finished"] = s.wire()
    t1 = T0 + timedelta(hours=6, minutes=12)
    s = st.started(s, generation=3, trigger="Requested", run_id="run12", now=t1)
    s = st.finished(
        s,
        report(t1),
        state=STATE,
        generation=3,
        next_run=t1 + timedelta(hours=6),
        requested_at="1763876400",
        now=t1 + timedelta(seconds=3),
    )
    out["second"] = s.wire()
    t2 = t1 + timedelta(hours=6)
    s = st.finished(
        s,
        report(t2, Mode.DRY_RUN),
        state=STATE,
        generation=4,
        next_run=t2 + timedelta(hours=6),
        requested_at=None,
        now=t2 + timedelta(seconds=1),
    )
    out["dryRun"] = s.wire()
    s = st.suspended(s, generation=5, now=t2 + timedelta(hours=1))
    out["suspended"] = s.wire()
    s = st.invalid(s, generation=6, message="spec.fs.institutionNumber: field required", now=t2 + timedelta(hours=2))
    out["invalid"] = s.wire()
    return out


@pytest.mark.parametrize("step", sorted(EARLIER))
def test_a_status_of_the_earlier_version_loads_whole_and_writes_back_the_same(step: str) -> None:
    earlier = EARLIER[step]
    InstitutionStatus.model_validate(earlier)  # strict: no field is dropped on the way in
    assert InstitutionStatus.load(earlier).wire() == earlier


@pytest.mark.parametrize("step", sorted(EARLIER))
def test_this_version_writes_what_the_earlier_one_wrote(step: str) -> None:
    assert replay()[step] == EARLIER[step]


def test_an_unreadable_field_is_left_out_and_the_rest_loads() -> None:
    earlier = {**EARLIER["second"], "nextRunTime": "soon", "history": "lost"}
    status = InstitutionStatus.load(earlier)
    assert status.nextRunTime is None and status.history is None
    assert status.lastRunTime == datetime(2026, 11, 23, 12, 12, tzinfo=UTC)
    assert status.progress is not None and status.progress.pipeline(FS).retry == ["D", "E"]
    # nor is it written back: the merge patch from what was read never touches it
    assert "nextRunTime" not in status.wire() and status.wire()["kopf"] == EARLIER["second"]["kopf"]
