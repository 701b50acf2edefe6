"""Kubernetes Events about runs. Counts, reasons, durations and item keys only: no personal data."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import kopf

from examsync.api.conditions import ConditionReason, ConditionType
from examsync.api.spec import Mode, format_duration
from examsync.api.status import Failure
from examsync.domain.outcomes import Action, WriteAction
from examsync.kube.status import outcome
from examsync.report import InstitutionReport

NORMAL, WARNING = "Normal", "Warning"
RUN_FINISHED = "RunFinished"
DRY_RUN_PLAN = "DryRunPlan"
_PLAN_ENTRIES = 10
_MAX_MESSAGE = 1000


def _post(body: Any, type_: str, reason: str, message: str) -> None:
    kopf.event(body, type=type_, reason=reason, message=message[:_MAX_MESSAGE])


def failure_reasons(failures: Sequence[Failure] | None) -> set[str]:
    return {str(f.reason) for f in failures or ()}


def run_finished(body: Any, report: InstitutionReport, next_in: timedelta, previous_reasons: set[str]) -> None:
    """The Normal event with the counts, then Warnings for Stalled and for new failure reasons."""
    if next_in >= timedelta(minutes=10):  # "6h17m", not "6h17m23s"
        next_in = timedelta(minutes=round(next_in.total_seconds() / 60))
    _post(body, NORMAL, RUN_FINISHED, f"{report.summary()}; next run in {format_duration(next_in)}")
    _, stop_reason, message, stalled = outcome(report)
    if stalled:
        _post(body, WARNING, ConditionType.STALLED, f"{stop_reason}: {message}")
    counts: Counter[str] = Counter()
    for failure in report.failures():
        counts[failure.reason] += 1
    for pipeline in report.pipelines.values():  # the full count, not only the failures listed
        for (action, reason), n in pipeline.reasons.items():
            if action is Action.FAILED and reason is not None:
                counts[reason] = max(counts[reason], n)
    for why in sorted(set(counts) - previous_reasons):
        _post(body, WARNING, why, f"{counts[why]} failed with reason {why} (new since the last run)")
    if report.mode == Mode.DRY_RUN:
        plan = report.plan()
        verbs = Counter(e.action for e in plan)
        listed = "; ".join(f"{e.action} {e.key} ({', '.join(e.fields)})" for e in plan[:_PLAN_ENTRIES])
        more = f"; and {len(plan) - _PLAN_ENTRIES} more" if len(plan) > _PLAN_ENTRIES else ""
        _post(
            body,
            NORMAL,
            DRY_RUN_PLAN,
            f"Would create {verbs[WriteAction.CREATE]}, update {verbs[WriteAction.UPDATE]}"
            + (f": {listed}{more}" if plan else ""),
        )


def invalid_spec(body: Any, message: str) -> None:
    _post(body, WARNING, ConditionType.STALLED, f"{ConditionReason.INVALID_SPEC}: {message}")
