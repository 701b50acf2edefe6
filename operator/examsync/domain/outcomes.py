"""What happened to one item: the vocabulary shared by status, reports, audit records and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Action(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    FAILED = "failed"


class Reason(StrEnum):
    MISSING_RESPONSIBLE = "MissingResponsible"
    BEFORE_START_YEAR = "BeforeStartYear"
    PLACE_FILTERED = "PlaceFiltered"
    NO_CANDIDATES = "NoCandidates"
    DISCONNECTED = "Disconnected"
    GONE = "Gone"
    FLOW_CLOSED = "FlowClosed"
    INVALID_SOURCE_DATA = "InvalidSourceData"
    CONFLICT = "Conflict"
    UPSTREAM_ERROR = "UpstreamError"
    UNKNOWN_PERIOD = "UnknownPeriod"


# Every skip reason, so a pipeline cannot invent one the contract does not list.
SKIP_REASONS = frozenset(
    {
        Reason.BEFORE_START_YEAR,
        Reason.PLACE_FILTERED,
        Reason.NO_CANDIDATES,
        Reason.DISCONNECTED,
        Reason.GONE,
        Reason.FLOW_CLOSED,
    }
)
FAIL_REASONS = frozenset({Reason.INVALID_SOURCE_DATA, Reason.CONFLICT, Reason.UPSTREAM_ERROR, Reason.UNKNOWN_PERIOD})


@dataclass(frozen=True)
class PlannedWrite:
    """One write the pipeline makes (Apply) or would make (DryRun)."""

    action: str  # "create" | "update"
    fields: tuple[str, ...]  # target API field names: all sent (create) or those that differ (update)


@dataclass(frozen=True)
class ItemResult:
    """The end of one item. Holds identifiers and counts only: never personal data."""

    key: str  # "{pipeline}:{source id}"
    source_id: str
    action: Action
    reason: Reason | None = None
    message: str = ""  # no personal data: callers build it from codes, counts and HTTP statuses
    target_id: str | None = None
    title: str | None = None  # a course title (not personal data)
    decoded_id: str | None = None
    responsibles_found: int | None = None
    responsibles_total: int | None = None
    writes: tuple[PlannedWrite, ...] = ()
    # pipeline-specific counters (e.g. supervisorsCreated) this item adds to the pipeline's counts
    extra_counts: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.action is Action.FAILED

    @property
    def missing_responsible(self) -> bool:
        return self.reason is Reason.MISSING_RESPONSIBLE
