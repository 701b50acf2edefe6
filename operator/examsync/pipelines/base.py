"""The one interface every pipeline implements, and the context a run gives it.

discover → plan → apply → report: a pipeline lists source ids (discover), reads source and target
for one id and decides what to write (plan), writes it (apply, skipped in DryRun); the driver in
``pipelines.driver`` does the rest the same way for every pipeline (report).

Each item has a `MaskingContext`: the pipeline adds the names and identifiers of the item's
people as it reads them, and every upstream error about the item is rendered with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from examsync.adapters.errors import UpstreamError
from examsync.adapters.upstream.error_text import MaskingContext
from examsync.api.spec import InstitutionSpec, PipelineName
from examsync.audit import AuditRecord
from examsync.credentials import ResolvedSecrets
from examsync.domain.outcomes import ItemResult, PlannedWrite
from examsync.state import PipelineState

AuditEmitter = Callable[[AuditRecord], None]

P = TypeVar("P")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class RunContext:
    """What one pipeline run knows besides its clients. Shared by the operator, CLI and tests."""

    institution: str  # namespace/name: the only institution label anywhere
    spec: InstitutionSpec
    run_id: str
    started: datetime
    dry_run: bool
    state: PipelineState
    audit: AuditEmitter
    checkpoint: Callable[[PipelineState], Awaitable[None]]
    now: Callable[[], datetime] = utcnow

    async def save(self) -> None:
        """Persist ``state`` now (state file or status) — used around non-idempotent writes."""
        if not self.dry_run:
            await self.checkpoint(self.state)


@dataclass(frozen=True)
class Discovery:
    """Ids to handle. `listed` is False when the source's list call failed (the watermark then stays)."""

    ids: list[str]
    listed: bool = True
    error: UpstreamError | None = None
    # the watermark under which the next run's listing holds every id this one listed: kept when
    # not every failed id fits into the retry set (None: keep the watermark the run started with)
    relist_watermark: datetime | None = None
    # what the pipeline's discovered counter reports when it is not one per id (Praktikportalen
    # counts flows, and one flow may carry several periods)
    discovered: int | None = None


@dataclass
class Plan(Generic[P]):
    """What one item needs. `outcome` is the result when nothing is written or, with writes,
    what Apply will report (so DryRun can report it unchanged). `payload` is the pipeline's own
    account of the writes, for its `apply` (None when there is nothing to write)."""

    outcome: ItemResult
    writes: tuple[PlannedWrite, ...] = ()
    payload: P | None = None

    def work(self) -> P:
        """The payload of a plan with writes (the driver applies only those)."""
        if self.payload is None:
            raise ValueError(f"{self.outcome.key}: a plan with writes carries what apply needs")
        return self.payload


class Pipeline(Protocol[P]):
    name: ClassVar[PipelineName]

    async def discover(self) -> Discovery: ...

    async def plan(self, source_id: str, masking: MaskingContext) -> Plan[P]: ...

    async def apply(self, plan: Plan[P], masking: MaskingContext) -> ItemResult: ...

    async def aclose(self) -> None: ...


# Builds a pipeline for one run, from its context and the run's Secrets.
PipelineFactory = Callable[[RunContext, ResolvedSecrets], Pipeline[Any]]
