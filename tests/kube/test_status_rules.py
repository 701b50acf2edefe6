"""Pure rules of the operator layer: conditions, merge patches, status building, scheduling."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from examsync.api import conditions as c
from examsync.api.conditions import ConditionReason as R
from examsync.api.conditions import ConditionStatus as S
from examsync.api.conditions import ConditionType as T
from examsync.api.status import InstitutionStatus
from examsync.domain.outcomes import Action, FsCounts, ItemResult, Reason
from examsync.kube import status as st
from examsync.kube.scheduler import INTERRUPTED, NEW, REQUESTED, SCHEDULED, SPEC_CHANGED, decide
from examsync.report import InstitutionReport, PipelineReport
from examsync.state import InstitutionState, PipelineState

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
SIX_HOURS = timedelta(hours=6)


def test_last_transition_time_moves_only_when_the_status_changes() -> None:
    conds = c.set_condition([], T.READY, S.TRUE, R.SUCCEEDED, "a", generation=1, now=T0)
    later = T0 + timedelta(hours=1)
    same = c.set_condition(conds, T.READY, S.TRUE, R.SUCCEEDED, "b", generation=2, now=later)
    assert same[0].model_dump(mode="json")["lastTransitionTime"] == "2026-11-23T06:00:00Z"
    assert (same[0].message, same[0].observedGeneration) == ("b", 2)
    flipped = c.set_condition(same, T.READY, S.FALSE, R.ITEMS_FAILED, "c", generation=2, now=later)
    assert flipped[0].model_dump(mode="json")["lastTransitionTime"] == "2026-11-23T07:00:00Z"


def test_conditions_keep_ready_reconciling_stalled_order() -> None:
    conds = c.set_condition([], T.STALLED, S.FALSE, R.IDLE, "", generation=1, now=T0)
    conds = c.set_condition(conds, T.RECONCILING, S.TRUE, R.PROGRESSING, "", generation=1, now=T0)
    conds = c.set_condition(conds, T.READY, S.UNKNOWN, R.PROGRESSING, "", generation=1, now=T0)
    assert [x.type for x in conds] == ["Ready", "Reconciling", "Stalled"]


def test_merge_patch_is_minimal_and_removes_keys() -> None:
    old = {"a": 1, "b": {"x": 1, "y": 2}, "l": [1, 2], "gone": True}
    new = {"a": 1, "b": {"x": 1, "y": 3}, "l": [1], "new": "v"}
    assert st.merge_patch(old, new) == {"b": {"y": 3}, "l": [1], "new": "v", "gone": None}
    assert st.merge_patch(new, new) == {}


def test_progress_is_bounded_by_dropping_oldest_digests_only() -> None:
    digests = {f"target-{i:05d}": "d" * 40 for i in range(5000)}
    state = InstitutionState(pipelines={"fs-inspera": PipelineState(watermark=T0, retry=["a", "b"], digests=digests)})
    data = st.progress_dict(state, limit=50_000)
    kept = data["pipelines"]["fs-inspera"]
    assert len(str(data)) < 60_000
    assert kept["retry"] == ["a", "b"] and kept["watermark"]
    assert "target-04999" in kept["digests"] and "target-00000" not in kept["digests"]
    assert st.read_progress(InstitutionStatus.load({"progress": data})).pipeline("fs-inspera").retry == ["a", "b"]


def _report(
    failed: int = 0,
    *,
    mode: str = "Apply",
    fatal: str | None = None,
    stalled: bool = False,
    reason: R | None = None,
) -> InstitutionReport:
    report = InstitutionReport(name="uio", namespace="examsync", mode=mode, run_id="r1", started=T0)
    pipeline = PipelineReport(
        name="fs-inspera",
        counts=FsCounts(),
        started=T0,
        fatal=fatal,
        fatal_reason=reason,
        stalled=stalled,
    )
    pipeline.add(ItemResult(key="fs-inspera:A", source_id="A", action=Action.CREATED), T0)
    for i in range(failed):
        pipeline.add(
            ItemResult(
                key=f"fs-inspera:F{i}",
                source_id=f"F{i}",
                action=Action.FAILED,
                reason=Reason.INVALID_SOURCE_DATA,
                message="missing field(s): start",
            ),
            T0,
        )
    report.pipelines["fs-inspera"] = pipeline
    return report


def test_outcome_reasons() -> None:
    assert st.outcome(_report()) == (S.TRUE, R.SUCCEEDED, "1 created, 0 updated, 0 failed", False)
    assert st.outcome(_report(2))[:2] == (S.FALSE, R.ITEMS_FAILED)
    assert st.outcome(_report(mode="DryRun"))[2] == "DryRun: 1 created, 0 updated, 0 failed"
    unavailable = st.outcome(_report(fatal="fs list: HTTP 503", reason=R.UPSTREAM_UNAVAILABLE))
    assert unavailable[:2] == (S.FALSE, R.UPSTREAM_UNAVAILABLE) and not unavailable[3]
    unauthorized = st.outcome(_report(fatal="fs list: HTTP 401", stalled=True, reason=R.UNAUTHORIZED))
    assert unauthorized[1] == R.UNAUTHORIZED and unauthorized[3] and "fs-inspera: fs list" in unauthorized[2]
    missing = _report()
    missing.pipelines.clear()
    missing.error, missing.stalled = "spec.fs.credentialsSecretRef: Secret 'uio-fs' not found", True
    missing.error_reason = R.SECRET_MISSING
    assert st.outcome(missing) == (S.FALSE, R.SECRET_MISSING, missing.error, True)


def test_finished_status_bounds_history_and_keeps_first_seen_time_of_failures() -> None:
    previous = InstitutionStatus()
    for i in range(7):
        now = T0 + timedelta(hours=6 * i)
        report = _report(1)
        report.started = now
        for p in report.pipelines.values():
            p.failures = [f.model_copy(update={"since": now}) for f in p.failures]
        previous = st.finished(
            previous,
            report,
            state=InstitutionState(),
            generation=1,
            next_run=now + SIX_HOURS,
            requested_at=None,
            now=now,
        )
    assert len(previous.history or []) == st.MAX_HISTORY
    assert previous.wire()["failures"][0]["since"] == "2026-11-23T06:00:00Z"
    assert "lastSuccessTime" not in previous.wire()


def test_suspended_keeps_ready_and_follows_generation() -> None:
    ready = c.set_condition([], T.READY, S.TRUE, R.SUCCEEDED, "1 created", generation=1, now=T0)
    status = st.suspended(
        InstitutionStatus(conditions=ready, observedGeneration=1, nextRunTime=T0), generation=2, now=T0 + SIX_HOURS
    ).wire()
    assert status["observedGeneration"] == 2 and "nextRunTime" not in status
    got = next((x for x in status["conditions"] if x["type"] == T.READY), None)
    assert got is not None and (got["status"], got["message"], got["lastTransitionTime"]) == (
        "True",
        "1 created",
        "2026-11-23T06:00:00Z",
    )
    rec = next((x for x in status["conditions"] if x["type"] == T.RECONCILING), None)
    assert rec is not None and (rec["status"], rec["reason"]) == ("False", "Suspended")


def _decide(
    status: dict[str, object],
    *,
    generation: int = 1,
    requested: str | None = None,
    now: datetime = T0,
    first: bool = False,
) -> tuple[str | None, datetime | None]:
    d = decide(
        InstitutionStatus.load(status),
        generation=generation,
        requested_at=requested,
        interval=SIX_HOURS,
        now=now,
        rng=random.Random(1),
        first=first,
    )
    return d.trigger, d.wake_at


def test_decide_triggers() -> None:
    ran = {
        "lastRunTime": "2026-11-23T06:00:00Z",
        "nextRunTime": "2026-11-23T12:10:00Z",
        "observedGeneration": 1,
        "conditions": [{"type": "Reconciling", "status": "False"}],
    }
    assert _decide({})[0] == NEW
    assert _decide(ran) == (None, datetime(2026, 11, 23, 12, 10, tzinfo=UTC))
    assert _decide(ran, generation=2)[0] == SPEC_CHANGED
    assert _decide(ran, requested="5")[0] == REQUESTED
    assert _decide({**ran, "lastHandledRequestedAt": "5"}, requested="5")[0] is None
    assert _decide({**ran, "conditions": [{"type": "Reconciling", "status": "True"}]})[0] == INTERRUPTED
    late = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    assert _decide(ran, now=late)[0] == SCHEDULED
    # overdue at start: wait a random share (≤ 10 % of the interval, ≤ 5 min) instead of all at once
    trigger, wake = _decide(ran, now=late, first=True)
    assert trigger is None and wake is not None and late <= wake <= late + timedelta(minutes=5)


def test_restart_spread_is_kept_across_later_looks() -> None:
    """A watch event during the restart wait must not start the held-back run early."""
    ran = {
        "lastRunTime": "2026-11-23T06:00:00Z",
        "nextRunTime": "2026-11-23T12:10:00Z",
        "observedGeneration": 1,
        "conditions": [{"type": "Reconciling", "status": "False"}],
    }
    late = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)

    def look(now: datetime, *, first: bool = False, hold: datetime | None = None, requested: str | None = None):
        return decide(
            InstitutionStatus.load(ran),
            generation=1,
            requested_at=requested,
            interval=SIX_HOURS,
            now=now,
            rng=random.Random(3),
            first=first,
            hold_until=hold,
        )

    held = look(late, first=True)
    assert held.trigger is None and held.spread and held.wake_at is not None and held.wake_at > late
    again = look(late + timedelta(seconds=1), hold=held.wake_at)
    assert again.trigger is None and again.wake_at == held.wake_at
    assert look(held.wake_at, hold=held.wake_at).trigger == SCHEDULED
    # a manual request during the wait still runs at once
    assert look(late, hold=held.wake_at, requested="7").trigger == REQUESTED
