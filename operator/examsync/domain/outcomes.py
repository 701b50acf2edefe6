"""What happened to one item, and the counters a pipeline keeps of its items: the vocabulary
shared by status, reports, the CLI, events, audit records and metrics (contracts/institution.md,
"Counting"). Each counter is declared once, as a field of its pipeline kind's counts model."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum, StrEnum
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field


class Action(StrEnum):
    """What happened to an item; every discovered item ends in exactly one."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    FAILED = "failed"


class Reason(StrEnum):
    """Why an item was skipped or failed (or was written without a responsible)."""

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


class WriteAction(StrEnum):
    """A write to a target system."""

    CREATE = "create"
    UPDATE = "update"


@dataclass(frozen=True)
class PlannedWrite:
    """One write the pipeline makes (Apply) or would make (DryRun)."""

    action: WriteAction
    fields: tuple[str, ...]  # target API field names: all sent (create) or those that differ (update)


# --- counters --------------------------------------------------------------------------------


class CounterRole(Enum):
    """What a counter counts, declared with its field (``Annotated[int, CounterRole.X]``)."""

    DISCOVERED = "discovered"  # what discovery found (ids, or flows)
    ACTION = "action"  # items that ended in the action the field is named after
    MISSING_RESPONSIBLE = "missingResponsible"  # items written without a responsible found


class Counts(BaseModel):
    """Counters of one pipeline run. Each field is one counter, always present (zero when nothing
    was counted); its role says what adds to it. Unknown fields are kept, so a status written by
    a later version loads."""

    model_config = ConfigDict(extra="allow")

    _roles: ClassVar[dict[str, CounterRole]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._roles = {
            name: role
            for name, info in cls.model_fields.items()
            for role in info.metadata
            if isinstance(role, CounterRole)
        }
        actions = {a.value for a in Action}
        wrong = [n for n, r in cls._roles.items() if r is CounterRole.ACTION and n not in actions]
        if wrong:
            raise TypeError(f"{cls.__name__}: action counters must be named after an Action: {wrong}")

    def _fields(self, role: CounterRole) -> list[str]:
        return [name for name, r in self._roles.items() if r is role]

    def _bump(self, name: str, by: int) -> None:
        setattr(self, name, getattr(self, name) + by)

    def add_discovered(self, n: int) -> None:
        for name in self._fields(CounterRole.DISCOVERED):
            self._bump(name, n)

    @property
    def discovered_total(self) -> int:
        return sum(getattr(self, name) for name in self._fields(CounterRole.DISCOVERED))

    def add_action(self, action: Action, n: int = 1) -> None:
        if action.value in self._fields(CounterRole.ACTION):
            self._bump(action.value, n)

    def add(self, result: ItemResult) -> None:
        """One finished item: its action's counter, and what else the item says it adds."""
        self.add_action(result.action)
        if result.missing_responsible:
            for name in self._fields(CounterRole.MISSING_RESPONSIBLE):
                self._bump(name, 1)
        if isinstance(result.counts, type(self)):
            self.add_counts(result.counts)

    def add_counts(self, other: Self) -> None:
        for name in type(self).model_fields:
            self._bump(name, getattr(other, name))

    def details(self) -> dict[str, int]:
        """The counters that are neither discovery nor an action, where not zero (the CLI's table
        shows them beside the result)."""
        shown = (CounterRole.DISCOVERED, CounterRole.ACTION)
        return {name: n for name, n in self.model_dump().items() if n and self._roles.get(name) not in shown}


def _counter(description: str) -> Any:
    return Field(default=0, ge=0, description=description)


class FsCounts(Counts):
    """Counters of a pipeline that reads FS (fs-inspera, fs-wiseflow)."""

    discovered: Annotated[int, CounterRole.DISCOVERED] = _counter(
        "Ids FS listed as changed, plus ids retried from earlier runs."
    )
    created: Annotated[int, CounterRole.ACTION] = _counter("Targets created (in DryRun: would be created).")
    updated: Annotated[int, CounterRole.ACTION] = _counter("Targets updated (in DryRun: would be updated).")
    unchanged: Annotated[int, CounterRole.ACTION] = _counter("Items whose target already held what FS says.")
    skipped: Annotated[int, CounterRole.ACTION] = _counter(
        "Items left alone by rule (BeforeStartYear, PlaceFiltered, NoCandidates, Disconnected, Gone, FlowClosed)."
    )
    failed: Annotated[int, CounterRole.ACTION] = _counter("Items that failed; each is tried again on later runs.")
    missingResponsible: Annotated[int, CounterRole.MISSING_RESPONSIBLE] = _counter(
        "Targets created or updated without a responsible found (also counted as created or updated)."
    )


class PraktikportalenCounts(Counts):
    """Counters of praktikportalen-wiseflow; an item is one (flow, period)."""

    flows: Annotated[int, CounterRole.DISCOVERED] = _counter(
        "Active flows carrying a praktikportalen-{periodNumber} source, handled in this run."
    )
    supervisorsCreated: int = _counter("WISEflow users created for supervisors.")
    supervisorsUpdated: int = _counter("WISEflow users of supervisors whose fields changed and were written.")
    assessorsAdded: int = _counter("Supervisors added to flows as external assessors.")
    assessorsRemoved: int = _counter("External assessors this integration added who left their period, removed.")
    failed: Annotated[int, CounterRole.ACTION] = _counter("Failed sources plus failed supervisors.")


class ActionCounts(Counts):
    """Items by what happened to them, over every pipeline of a run."""

    created: Annotated[int, CounterRole.ACTION] = _counter("Items created (in DryRun: would be created).")
    updated: Annotated[int, CounterRole.ACTION] = _counter("Items updated (in DryRun: would be updated).")
    unchanged: Annotated[int, CounterRole.ACTION] = _counter("Items that needed no write.")
    skipped: Annotated[int, CounterRole.ACTION] = _counter("Items left alone by rule.")
    failed: Annotated[int, CounterRole.ACTION] = _counter("Items that failed.")

    def of(self, action: Action) -> int:
        return int(getattr(self, action.value))


PipelineCounts = FsCounts | PraktikportalenCounts


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
    # what this item adds to its pipeline's counters besides its action (Praktikportalen: the
    # supervisors and assessors it wrote)
    counts: Counts | None = None

    @property
    def failed(self) -> bool:
        return self.action is Action.FAILED

    @property
    def missing_responsible(self) -> bool:
        return self.reason is Reason.MISSING_RESPONSIBLE

    def write_failed(self, message: str) -> ItemResult:
        """This outcome once its writes failed upstream: failed, with nothing reported as written."""
        return replace(self, action=Action.FAILED, reason=Reason.UPSTREAM_ERROR, message=message, writes=())
