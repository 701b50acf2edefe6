"""The Institution's status (contracts/institution.md), built from run reports.

Every function returns the whole desired status; ``merge_patch`` turns old → new into the
smallest JSON merge patch (RFC 7386), so keys that disappear are removed on the server too.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from examsync.domain.outcomes import Action
from examsync.kube import conditions as c
from examsync.report import InstitutionReport, PipelineReport
from examsync.state import MAX_PROGRESS_BYTES, InstitutionState, bounded

Status = dict[str, Any]

MAX_HISTORY = 5
MAX_STATUS_PLAN = 50

# SecretMissing names the spec field first ("spec.fs.credentialsSecretRef: Secret 'x' not found")
_SECRET_FIELD = re.compile(r"^spec\.[\w.]+SecretRef: ")
SECRET_UNREADABLE_PREFIX = "Secret could not be read"


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


def read_progress(status: Status | None) -> InstitutionState:
    """The durable progress kept under ``status.progress`` (empty when absent or unreadable)."""
    raw = (status or {}).get("progress")
    if not isinstance(raw, dict):
        return InstitutionState()
    try:
        return InstitutionState.model_validate(raw)
    except ValueError:
        return InstitutionState()


def progress_dict(state: InstitutionState, limit: int = MAX_PROGRESS_BYTES) -> dict[str, Any]:
    """``state`` as JSON for status, under ``limit`` bytes (see ``state.bounded``: digests that
    only save work go first; the watermark, retry set and pending creates always stay)."""
    return bounded(state, limit)


def counts_message(report: InstitutionReport) -> str:
    """What ``kubectl get inst`` shows in STATUS, e.g. "3 created, 5 updated, 1 failed"."""
    totals = report.totals()
    text = ", ".join(f"{totals[a.value]} {a.value}" for a in (Action.CREATED, Action.UPDATED, Action.FAILED))
    return f"DryRun: {text}" if report.mode == "DryRun" else text


def _error_reason(error: str) -> str:
    """The run could not start: a Secret missing or unreadable, or an internal error."""
    if _SECRET_FIELD.match(error):
        return c.SECRET_MISSING
    if error.startswith(SECRET_UNREADABLE_PREFIX):
        return c.SECRET_UNREADABLE
    return c.INTERNAL_ERROR


def _fatal_reason(pipeline: PipelineReport) -> str:
    if pipeline.fatal and _SECRET_FIELD.match(pipeline.fatal):
        return c.SECRET_MISSING
    if pipeline.internal:
        return c.INTERNAL_ERROR
    if pipeline.stalled:
        if pipeline.fatal_status == 401:
            return c.UNAUTHORIZED
        if pipeline.fatal_status == 403:
            return c.FORBIDDEN
        return c.HOST_NOT_ALLOWED
    return c.UPSTREAM_UNAVAILABLE


def outcome(report: InstitutionReport) -> tuple[str, str, str, bool]:
    """(Ready status, reason, message, stalled) of a finished run."""
    if report.error is not None:
        return c.FALSE, report.error_reason or _error_reason(report.error), report.error, report.stalled
    fatal = [p for p in report.pipelines.values() if p.fatal is not None]
    stalled = [p for p in fatal if p.stalled]
    if stalled or fatal:
        first = (stalled or fatal)[0]
        message = "; ".join(f"{p.name}: {p.fatal}" for p in (stalled or fatal))
        return c.FALSE, _fatal_reason(first), message, bool(stalled)
    message = counts_message(report)
    if report.failed:
        return c.FALSE, c.ITEMS_FAILED, message, False
    return c.TRUE, c.SUCCEEDED, message, False


def result_of(report: InstitutionReport) -> str:
    status, reason, _, stalled = outcome(report)
    if stalled:
        return "Stalled"
    return "Succeeded" if status == c.TRUE else reason


def _failures(report: InstitutionReport, previous: Status) -> list[dict[str, str]]:
    """Newest first, bounded; a failure that persists keeps the time it was first seen."""
    seen = {(f.get("key"), f.get("reason")): f.get("since") for f in previous.get("failures") or []}
    out = []
    for failure in report.failures():
        entry = failure.as_dict()
        since = seen.get((entry["key"], entry["reason"]))
        if since:
            entry["since"] = since
        out.append(entry)
    out.sort(key=lambda f: f["since"], reverse=True)  # ISO times in UTC sort as text
    return out


def started(previous: Status, *, generation: int | None, trigger: str, run_id: str, now: datetime) -> Status:
    status = dict(previous)
    conds = previous.get("conditions") or []
    if c.get_condition(conds, c.READY) is None:
        conds = c.set_condition(
            conds, c.READY, c.UNKNOWN, c.PROGRESSING, "First run in progress", generation=generation, now=now
        )
    conds = c.set_condition(
        conds,
        c.RECONCILING,
        c.TRUE,
        c.PROGRESSING,
        f"Run {run_id} in progress ({trigger})",
        generation=generation,
        now=now,
    )
    status["conditions"] = conds
    return status


def finished(
    previous: Status,
    report: InstitutionReport,
    *,
    state: InstitutionState,
    generation: int | None,
    next_run: datetime,
    now: datetime,
) -> Status:
    ready, reason, message, stalled = outcome(report)
    conds = previous.get("conditions") or []
    conds = c.set_condition(conds, c.READY, ready, reason, message, generation=generation, now=now)
    conds = c.set_condition(
        conds,
        c.RECONCILING,
        c.FALSE,
        c.IDLE,
        f"Next run at {c.timestamp(next_run)}",
        generation=generation,
        now=now,
    )
    if stalled:
        conds = c.set_condition(conds, c.STALLED, c.TRUE, reason, message, generation=generation, now=now)
    else:
        conds = c.set_condition(conds, c.STALLED, c.FALSE, c.IDLE, "", generation=generation, now=now)
    totals = report.totals()
    entry = {
        "runId": report.run_id,
        "start": c.timestamp(report.started),
        "duration": round(max(report.duration, (now - report.started).total_seconds()), 3),
        "result": result_of(report),
        "counts": {k: totals[k] for k in sorted(totals)},
    }
    status: Status = {
        **previous,
        "observedGeneration": generation,
        "conditions": conds,
        "mode": report.mode,
        "lastRunTime": c.timestamp(report.started),
        "nextRunTime": c.timestamp(next_run),
        "pipelines": {name: dict(p.counts) for name, p in report.pipelines.items()},
        "failures": _failures(report, previous),
        "history": [entry, *(previous.get("history") or [])][:MAX_HISTORY],
    }
    if not report.failed:
        status["lastSuccessTime"] = c.timestamp(report.started)
    plan = [e for p in report.pipelines.values() for e in p.plan]
    if report.mode == "DryRun":
        status["plan"] = plan[:MAX_STATUS_PLAN]
        status["planTotal"] = len(plan)
    else:
        status.pop("plan", None)
        status.pop("planTotal", None)
        status["progress"] = progress_dict(state)
    if generation is None:
        status.pop("observedGeneration", None)
    return status


def suspended(previous: Status, *, generation: int | None, now: datetime) -> Status:
    """No runs: Ready and Stalled keep their values, Reconciling says why nothing happens."""
    conds = c.set_condition(
        previous.get("conditions") or [],
        c.RECONCILING,
        c.FALSE,
        c.SUSPENDED,
        "spec.suspend is true",
        generation=generation,
        now=now,
    )
    status = {**previous, "conditions": c.with_generation(conds, generation)}
    if generation is not None:
        status["observedGeneration"] = generation
    status.pop("nextRunTime", None)
    return status


def invalid(previous: Status, *, generation: int | None, message: str, now: datetime) -> Status:
    """The spec cannot be used: Stalled until someone changes it."""
    conds = previous.get("conditions") or []
    conds = c.set_condition(conds, c.READY, c.FALSE, c.INVALID_SPEC, message, generation=generation, now=now)
    conds = c.set_condition(
        conds, c.RECONCILING, c.FALSE, c.IDLE, "Waiting for a valid spec", generation=generation, now=now
    )
    conds = c.set_condition(conds, c.STALLED, c.TRUE, c.INVALID_SPEC, message, generation=generation, now=now)
    status = {**previous, "conditions": conds}
    if generation is not None:
        status["observedGeneration"] = generation
    status.pop("nextRunTime", None)
    return status
