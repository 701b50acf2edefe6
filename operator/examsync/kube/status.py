"""The Institution's status (contracts/institution.md), built from run reports.

Every function returns the whole desired status (``InstitutionStatus``); the reconciler sends the
smallest JSON merge patch (RFC 7386, ``merge_patch``) from the last status it wrote to it, so keys
that disappear are removed on the server too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from examsync.api.conditions import (
    ConditionReason,
    ConditionStatus,
    ConditionType,
    get_condition,
    set_condition,
    with_generation,
)
from examsync.api.spec import Mode
from examsync.api.status import Failure, HistoryEntry, InstitutionStatus, PipelinesStatus
from examsync.api.timestamps import timestamp
from examsync.domain.outcomes import Action
from examsync.report import InstitutionReport
from examsync.state import MAX_PROGRESS_BYTES, InstitutionState, bounded

MAX_HISTORY = 5
MAX_STATUS_PLAN = 50


def merge_patch(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch that turns ``old`` into ``new`` (None: nothing to change)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return None if old == new else new
    patch: dict[str, Any] = {}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif isinstance(value, dict) and isinstance(old[key], dict):
            sub = merge_patch(old[key], value)
            if sub:
                patch[key] = sub
        elif old[key] != value:
            patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch


def read_progress(status: InstitutionStatus) -> InstitutionState:
    """The durable progress kept under ``status.progress`` (empty when absent or unreadable); a
    copy, so the run's changes reach status only through what it writes."""
    return status.progress.model_copy(deep=True) if status.progress is not None else InstitutionState()


def progress_dict(state: InstitutionState, limit: int = MAX_PROGRESS_BYTES) -> dict[str, Any]:
    """``state`` as JSON for status, under ``limit`` bytes (see ``state.bounded``: digests that
    only save work go first; the watermark, retry set and pending creates always stay)."""
    return bounded(state, limit)


def bounded_progress(state: InstitutionState) -> InstitutionState:
    """``state`` as status keeps it: within the bound of ``progress_dict``."""
    return InstitutionState.model_validate(progress_dict(state))


def counts_message(report: InstitutionReport) -> str:
    """What ``kubectl get inst`` shows in STATUS, e.g. "3 created, 5 updated, 1 failed"."""
    totals = report.totals()
    text = ", ".join(f"{totals.of(a)} {a}" for a in (Action.CREATED, Action.UPDATED, Action.FAILED))
    return f"DryRun: {text}" if report.mode == Mode.DRY_RUN else text


class Outcome(NamedTuple):
    """A finished run as the Ready (and Stalled) condition says it."""

    ready: ConditionStatus
    reason: ConditionReason
    message: str
    stalled: bool


def outcome(report: InstitutionReport) -> Outcome:
    if report.error is not None:
        return Outcome(
            ConditionStatus.FALSE, report.error_reason or ConditionReason.INTERNAL_ERROR, report.error, report.stalled
        )
    fatal = [p for p in report.pipelines.values() if p.fatal is not None]
    stalled = [p for p in fatal if p.stalled]
    if fatal:
        told = stalled or fatal
        message = "; ".join(f"{p.name}: {p.fatal}" for p in told)
        return Outcome(
            ConditionStatus.FALSE, told[0].fatal_reason or ConditionReason.UPSTREAM_UNAVAILABLE, message, bool(stalled)
        )
    message = counts_message(report)
    if report.failed:
        return Outcome(ConditionStatus.FALSE, ConditionReason.ITEMS_FAILED, message, False)
    return Outcome(ConditionStatus.TRUE, ConditionReason.SUCCEEDED, message, False)


def result_of(report: InstitutionReport) -> str:
    ready, reason, _, stalled = outcome(report)
    if stalled:
        return str(ConditionType.STALLED)
    return str(ConditionReason.SUCCEEDED) if ready is ConditionStatus.TRUE else str(reason)


def _failures(report: InstitutionReport, previous: InstitutionStatus) -> list[Failure]:
    """Newest first, bounded; a failure that persists keeps the time it was first seen."""
    seen = {(f.key, f.reason): f.since for f in previous.failures or []}
    out = [
        f.model_copy(update={"since": seen[(f.key, f.reason)]}) if (f.key, f.reason) in seen else f
        for f in report.failures()
    ]
    out.sort(key=lambda f: timestamp(f.since), reverse=True)  # as written: to the second
    return out


def started(
    previous: InstitutionStatus, *, generation: int | None, trigger: str, run_id: str, now: datetime
) -> InstitutionStatus:
    conds = previous.conditions
    if get_condition(conds, ConditionType.READY) is None:
        conds = set_condition(
            conds,
            ConditionType.READY,
            ConditionStatus.UNKNOWN,
            ConditionReason.PROGRESSING,
            "First run in progress",
            generation=generation,
            now=now,
        )
    conds = set_condition(
        conds,
        ConditionType.RECONCILING,
        ConditionStatus.TRUE,
        ConditionReason.PROGRESSING,
        f"Run {run_id} in progress ({trigger})",
        generation=generation,
        now=now,
    )
    return previous.model_copy(update={"conditions": conds})


def finished(
    previous: InstitutionStatus,
    report: InstitutionReport,
    *,
    state: InstitutionState,
    generation: int | None,
    next_run: datetime,
    requested_at: str | None,
    now: datetime,
) -> InstitutionStatus:
    ready, reason, message, stalled = outcome(report)
    conds = set_condition(
        previous.conditions, ConditionType.READY, ready, reason, message, generation=generation, now=now
    )
    conds = set_condition(
        conds,
        ConditionType.RECONCILING,
        ConditionStatus.FALSE,
        ConditionReason.IDLE,
        f"Next run at {timestamp(next_run)}",
        generation=generation,
        now=now,
    )
    if stalled:
        conds = set_condition(
            conds, ConditionType.STALLED, ConditionStatus.TRUE, reason, message, generation=generation, now=now
        )
    else:
        conds = set_condition(
            conds,
            ConditionType.STALLED,
            ConditionStatus.FALSE,
            ConditionReason.IDLE,
            "",
            generation=generation,
            now=now,
        )
    entry = HistoryEntry(
        runId=report.run_id,
        start=report.started,
        duration=round(max(report.duration, (now - report.started).total_seconds()), 3),
        result=result_of(report),
        counts=report.totals(),
    )
    update: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": conds,
        "mode": Mode(report.mode),
        "lastRunTime": report.started,
        "nextRunTime": next_run,
        "pipelines": PipelinesStatus.model_validate({str(n): p.counts for n, p in report.pipelines.items()}),
        "failures": _failures(report, previous),
        "history": [entry, *(previous.history or [])][:MAX_HISTORY],
    }
    if not report.failed:
        update["lastSuccessTime"] = report.started
    if requested_at is not None:
        update["lastHandledRequestedAt"] = requested_at
    plan = report.plan()
    if report.mode == Mode.DRY_RUN:
        update["plan"], update["planTotal"] = plan[:MAX_STATUS_PLAN], len(plan)
    else:
        update["plan"], update["planTotal"] = None, None
        update["progress"] = bounded_progress(state)
    return previous.model_copy(update=update)


def suspended(previous: InstitutionStatus, *, generation: int | None, now: datetime) -> InstitutionStatus:
    """No runs: Ready and Stalled keep their values, Reconciling says why nothing happens."""
    conds = set_condition(
        previous.conditions,
        ConditionType.RECONCILING,
        ConditionStatus.FALSE,
        ConditionReason.SUSPENDED,
        "spec.suspend is true",
        generation=generation,
        now=now,
    )
    update: dict[str, Any] = {"conditions": with_generation(conds, generation), "nextRunTime": None}
    if generation is not None:
        update["observedGeneration"] = generation
    return previous.model_copy(update=update)


def invalid(previous: InstitutionStatus, *, generation: int | None, message: str, now: datetime) -> InstitutionStatus:
    """The spec cannot be used: Stalled until someone changes it."""
    conds = set_condition(
        previous.conditions,
        ConditionType.READY,
        ConditionStatus.FALSE,
        ConditionReason.INVALID_SPEC,
        message,
        generation=generation,
        now=now,
    )
    conds = set_condition(
        conds,
        ConditionType.RECONCILING,
        ConditionStatus.FALSE,
        ConditionReason.IDLE,
        "Waiting for a valid spec",
        generation=generation,
        now=now,
    )
    conds = set_condition(
        conds,
        ConditionType.STALLED,
        ConditionStatus.TRUE,
        ConditionReason.INVALID_SPEC,
        message,
        generation=generation,
        now=now,
    )
    update: dict[str, Any] = {"conditions": conds, "nextRunTime": None}
    if generation is not None:
        update["observedGeneration"] = generation
    return previous.model_copy(update=update)
