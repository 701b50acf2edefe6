"""Run reports: the same counts and failures feed status, the CLI report, events and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from examsync.domain.outcomes import Action, ItemResult, Reason

MAX_FAILURES = 50
MAX_PLAN = 500


@dataclass(frozen=True)
class Failure:
    key: str
    reason: str
    message: str
    since: datetime

    def as_dict(self) -> dict[str, str]:
        return {
            "key": self.key,
            "reason": self.reason,
            "message": self.message,
            "since": self.since.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


@dataclass
class PipelineReport:
    name: str
    counts: dict[str, int]
    started: datetime
    duration: float = 0.0
    listed: bool = True
    fatal: str | None = None  # a whole source or target could not be used (message, no secrets)
    fatal_status: int | None = None  # its HTTP status, when it had one
    stalled: bool = False  # retrying will not fix it (401/403, missing Secret)
    internal: bool = False  # the pipeline itself failed (an exception, progress not saved), not an upstream
    failures: list[Failure] = field(default_factory=list)
    failures_total: int = 0
    plan: list[dict[str, Any]] = field(default_factory=list)
    actions: dict[str, int] = field(default_factory=dict)  # action -> count, for events and metrics
    reasons: dict[tuple[str, str], int] = field(default_factory=dict)  # (action, reason) -> count
    failed_ids: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.fatal is not None or self.actions.get(Action.FAILED, 0) > 0

    def add(self, result: ItemResult, now: datetime) -> None:
        action = result.action.value
        if action in self.counts:
            self.counts[action] += 1
        if result.missing_responsible and "missingResponsible" in self.counts:
            self.counts["missingResponsible"] += 1
        for key, value in result.extra_counts.items():
            self.counts[key] = self.counts.get(key, 0) + value
        self.actions[action] = self.actions.get(action, 0) + 1
        reason = result.reason.value if result.reason else ""
        self.reasons[(action, reason)] = self.reasons.get((action, reason), 0) + 1
        if result.failed:
            self.failed_ids.append(result.source_id)
            self.add_failure(result.key, result.reason or Reason.UPSTREAM_ERROR, result.message, now)

    def add_failure(self, key: str, reason: str, message: str, now: datetime) -> None:
        self.failures_total += 1
        if len(self.failures) < MAX_FAILURES:
            self.failures.append(Failure(key, str(reason), message[:300], now))

    def fail_internally(self, message: str, now: datetime) -> None:
        """The pipeline as a whole failed on our side; it is one failure keyed by the pipeline."""
        if self.fatal is None:
            self.fatal, self.internal = message, True
        self.add_failure(self.name, Reason.UPSTREAM_ERROR, message, now)

    def add_plan(self, pipeline: str, result: ItemResult) -> None:
        for write in result.writes:
            if len(self.plan) >= MAX_PLAN:
                return
            self.plan.append(
                {"pipeline": pipeline, "action": write.action, "key": result.key, "fields": list(write.fields)}
            )


@dataclass
class InstitutionReport:
    name: str
    namespace: str
    mode: str
    run_id: str
    started: datetime
    pipelines: dict[str, PipelineReport] = field(default_factory=dict)
    error: str | None = None  # the run could not start (e.g. a missing Secret)
    error_reason: str | None = None  # its condition reason when the cause says it (HostNotAllowed, ...)
    stalled: bool = False
    enabled: list[str] = field(default_factory=list)  # the pipelines this run was to run

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

    def totals(self) -> dict[str, int]:
        totals = {a.value: 0 for a in Action}
        for report in self.pipelines.values():
            for action, count in report.actions.items():
                totals[action] = totals.get(action, 0) + count
        return totals

    def failures(self) -> list[Failure]:
        """Newest first across pipelines, bounded."""
        merged = [f for p in self.pipelines.values() for f in p.failures]
        if self.error:
            # a run that could not start failed each of its pipelines as a whole (the contract's
            # `{"key": "{pipeline}", "reason": "UpstreamError"}`); Stalled lives in the conditions
            merged.extend(Failure(name, Reason.UPSTREAM_ERROR.value, self.error, self.started)
                          for name in self.enabled)
        merged.sort(key=lambda f: f.since, reverse=True)
        return merged[:MAX_FAILURES]

    def as_json(self) -> dict[str, Any]:
        """The CLI's JSON shape (contracts/institution.md): every key always present."""
        return {
            "name": self.name,
            "namespace": self.namespace,
            "mode": self.mode,
            "pipelines": {name: dict(p.counts) for name, p in self.pipelines.items()},
            "failures": [f.as_dict() for f in self.failures()],
            "plan": [entry for p in self.pipelines.values() for entry in p.plan][:MAX_PLAN],
        }

    def summary(self) -> str:
        """"Run finished in 12s: 3 created, 5 updated, 0 unchanged, 1 skipped, 1 failed"."""
        t = self.totals()
        counts = ", ".join(f"{t[a.value]} {a.value}" for a in Action)
        return f"Run finished in {self.duration:.0f}s: {counts}"
