"""Run reports: the same counts and failures feed status, the CLI report, events and metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from examsync.api.conditions import ConditionReason
from examsync.api.spec import Mode, PipelineName
from examsync.api.status import Failure, PlanEntry
from examsync.domain.outcomes import Action, ActionCounts, ItemResult, PipelineCounts, Reason
from examsync.errors import RunStoppingError

MAX_FAILURES = 50
MAX_PLAN = 500


@dataclass
class PipelineReport:
    name: PipelineName
    counts: PipelineCounts
    started: datetime
    duration: float = 0.0
    listed: bool = True
    fatal: str | None = None  # a whole source or target could not be used (message, no secrets)
    fatal_reason: ConditionReason | None = None  # its condition reason (set with `fatal`)
    stalled: bool = False  # retrying will not fix it (401/403, a host not allowed)
    failures: list[Failure] = field(default_factory=list)
    plan: list[PlanEntry] = field(default_factory=list)
    actions: Counter[Action] = field(default_factory=Counter)  # for events and metrics
    reasons: Counter[tuple[Action, Reason | None]] = field(default_factory=Counter)
    failed_ids: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.fatal is not None or self.actions[Action.FAILED] > 0

    def add(self, result: ItemResult, now: datetime) -> None:
        self.counts.add(result)
        self.actions[result.action] += 1
        self.reasons[(result.action, result.reason)] += 1
        if result.failed:
            self.failed_ids.append(result.source_id)
            self.add_failure(result.key, result.reason or Reason.UPSTREAM_ERROR, result.message, now)

    def add_failure(self, key: str, reason: Reason, message: str, now: datetime) -> None:
        if len(self.failures) < MAX_FAILURES:
            self.failures.append(Failure(key=key, reason=reason, message=message[:300], since=now))

    def stop(self, message: str, reason: ConditionReason, *, stalled: bool) -> None:
        """The source or target as a whole could not be used (the listing, then an item's account
        of it, which wins); once Stalled, the pipeline stays so."""
        self.fatal, self.fatal_reason = message, reason
        self.stalled = self.stalled or stalled

    def fail_internally(self, message: str, now: datetime) -> None:
        """The pipeline as a whole failed on our side; it is one failure keyed by the pipeline."""
        if self.fatal is None:
            self.stop(message, ConditionReason.INTERNAL_ERROR, stalled=False)
        self.add_failure(self.name, Reason.UPSTREAM_ERROR, message, now)

    def add_plan(self, result: ItemResult) -> None:
        for write in result.writes:
            if len(self.plan) >= MAX_PLAN:
                return
            self.plan.append(
                PlanEntry(pipeline=self.name, action=write.action, key=result.key, fields=list(write.fields))
            )


@dataclass
class InstitutionReport:
    name: str
    namespace: str
    mode: Mode
    run_id: str
    started: datetime
    pipelines: dict[PipelineName, PipelineReport] = field(default_factory=dict)
    error: str | None = None  # the run could not start (e.g. a missing Secret)
    error_reason: ConditionReason | None = None  # its condition reason
    stalled: bool = False
    enabled: list[PipelineName] = field(default_factory=list)  # the pipelines this run was to run

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def failed(self) -> bool:
        return self.error is not None or any(p.failed for p in self.pipelines.values())

    @property
    def is_stalled(self) -> bool:
        return self.stalled or any(p.stalled for p in self.pipelines.values())

    @property
    def duration(self) -> float:
        return max((p.duration for p in self.pipelines.values()), default=0.0)

    def could_not_start(self, error: RunStoppingError) -> None:
        """The run stopped before any pipeline ran, for the error's reason."""
        self.error, self.error_reason, self.stalled = str(error), error.reason, error.stalled

    def totals(self) -> ActionCounts:
        totals = ActionCounts()
        for report in self.pipelines.values():
            for action, count in report.actions.items():
                totals.add_action(action, count)
        return totals

    def failures(self) -> list[Failure]:
        """Newest first across pipelines, bounded."""
        merged = [f for p in self.pipelines.values() for f in p.failures]
        if self.error:
            # a run that could not start failed each of its pipelines as a whole (the contract's
            # `{"key": "{pipeline}", "reason": "UpstreamError"}`); Stalled lives in the conditions
            merged.extend(
                Failure(key=name, reason=Reason.UPSTREAM_ERROR, message=self.error, since=self.started)
                for name in self.enabled
            )
        merged.sort(key=lambda f: f.since, reverse=True)
        return merged[:MAX_FAILURES]

    def plan(self) -> list[PlanEntry]:
        return [entry for p in self.pipelines.values() for entry in p.plan]

    def as_json(self) -> dict[str, Any]:
        """The CLI's JSON shape (contracts/institution.md): every key always present."""
        return {
            "name": self.name,
            "namespace": self.namespace,
            "mode": str(self.mode),
            "pipelines": {str(name): p.counts.model_dump() for name, p in self.pipelines.items()},
            "failures": [f.model_dump(mode="json") for f in self.failures()],
            "plan": [entry.model_dump(mode="json") for entry in self.plan()][:MAX_PLAN],
        }

    def summary(self) -> str:
        """ "Run finished in 12s: 3 created, 5 updated, 0 unchanged, 1 skipped, 1 failed"."""
        t = self.totals()
        counts = ", ".join(f"{t.of(a)} {a.value}" for a in Action)
        return f"Run finished in {self.duration:.0f}s: {counts}"
