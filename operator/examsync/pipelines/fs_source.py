"""FS as the source of a pipeline: discovery (changed ids + retry set) and the checked detail.

Shared by every pipeline that reads FS (fs-inspera with eksamenssystem INSPERA, fs-wiseflow with
WISEFLOW). `fetch` returns either an in-scope Assessment or the item's finished ItemResult
(Gone, InvalidSourceData, BeforeStartYear, PlaceFiltered, NoCandidates). `FsPipeline` is what such
a pipeline shares besides: its target's users looked up once per run, and its item results.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import ClassVar, Generic, TypeVar

from examsync.adapters.errors import UpstreamError
from examsync.adapters.fs.client import FsClient
from examsync.adapters.upstream.client import UpstreamAdapter
from examsync.adapters.upstream.error_text import MaskingContext
from examsync.api.spec import FsSpec, PipelineName
from examsync.domain.fs import (
    Assessment,
    InvalidSourceData,
    decode_id,
    ineligible_reason,
    parse_assessment,
    people_of,
)
from examsync.domain.outcomes import Action, ItemResult, PlannedWrite, Reason
from examsync.errors import RunStoppingError
from examsync.pipelines.base import Discovery, Plan, RunContext
from examsync.pipelines.lookups import LookupCache, users_found

log = logging.getLogger("examsync.fs")

P = TypeVar("P")

# Later runs ask FS for changes since the last run's start minus this overlap (clock skew, slow commits).
WATERMARK_OVERLAP = timedelta(minutes=15)


def item_key(pipeline: PipelineName, source_id: str) -> str:
    return f"{pipeline}:{source_id}"


def finished(
    pipeline: PipelineName,
    source_id: str,
    action: Action,
    reason: Reason | None = None,
    message: str = "",
    *,
    assessment: Assessment | None = None,
    target_id: str | int | None = None,
    writes: tuple[PlannedWrite, ...] = (),
    responsibles_found: int | None = None,
) -> ItemResult:
    """An ItemResult with the identifiers every result of an FS item carries; with
    `responsibles_found`, also how many of the assessment's responsibles FS listed."""
    listed = assessment.responsibles_listed if assessment is not None and responsibles_found is not None else None
    return ItemResult(
        key=item_key(pipeline, source_id),
        source_id=source_id,
        action=action,
        reason=reason,
        message=message,
        target_id=str(target_id) if target_id is not None else None,
        title=assessment.emnetittel if assessment else None,
        decoded_id=decode_id(source_id),
        responsibles_found=responsibles_found,
        responsibles_total=listed,
        writes=writes,
    )


def change_cutoff(ctx: RunContext) -> datetime:
    """First run: the lookback window back from the run's start; later runs: the watermark minus overlap."""
    if ctx.state.watermark is None:
        return ctx.started - ctx.spec.lookback_delta
    return ctx.state.watermark - WATERMARK_OVERLAP


def exam_date_window(fs: FsSpec, today: date) -> tuple[date, date]:
    """1 January of startYear to one year after today (29 February falls back to the 28th)."""
    try:
        until = today.replace(year=today.year + 1)
    except ValueError:
        until = today.replace(year=today.year + 1, day=28)
    return date(fs.startYear, 1, 1), until


class FsSource:
    """FS for one pipeline run: `pipeline` names item keys, `exam_system` is INSPERA or WISEFLOW."""

    def __init__(self, pipeline: PipelineName, exam_system: str, ctx: RunContext, client: FsClient) -> None:
        fs = ctx.spec.fs
        if fs is None:
            raise ValueError("spec.fs is required for an FS pipeline")
        self.pipeline = pipeline
        self.exam_system = exam_system.upper()
        self.ctx = ctx
        self.fs = fs
        self.client = client

    async def discover(self) -> Discovery:
        """Listed ids plus retry ids; when the list call fails, only the retry ids (the watermark stays)."""
        retry = list(self.ctx.state.retry)
        date_from, date_to = exam_date_window(self.fs, self.ctx.now().date())
        cutoff = change_cutoff(self.ctx)
        try:
            listed = await self.client.list_changed(
                self.fs.institutionNumber, date_from, date_to, self.exam_system, cutoff
            )
        except UpstreamError as exc:
            return Discovery(ids=retry, listed=False, error=exc)
        ids = list(dict.fromkeys([entry.id for entry in listed] + retry))
        log.info(
            "fs listed changed assessments",
            extra={
                "institution": self.ctx.institution,
                "pipeline": self.pipeline,
                "runId": self.ctx.run_id,
                "changedSince": cutoff.isoformat(),
                "listed": len(listed),
                "retried": len(retry),
            },
        )
        # listed again from this cut-off, whatever failed in this run is found again
        return Discovery(ids=ids, relist_watermark=cutoff + WATERMARK_OVERLAP)

    async def plan(
        self, source_id: str, masking: MaskingContext, plan_assessment: Callable[[Assessment], Awaitable[Plan[P]]]
    ) -> Plan[P]:
        """Fetch and check one assessment, then let the pipeline plan it. An upstream failure fails
        this item only (with its decoded id); run-stopping errors go on to the driver."""
        try:
            fetched = await self.fetch(source_id, masking)
            if isinstance(fetched, ItemResult):
                return Plan(outcome=fetched)
            return await plan_assessment(fetched)
        except RunStoppingError:
            raise
        except UpstreamError as exc:
            return Plan(
                outcome=finished(self.pipeline, source_id, Action.FAILED, Reason.UPSTREAM_ERROR, exc.describe(masking))
            )

    async def fetch(self, source_id: str, masking: MaskingContext) -> Assessment | ItemResult:
        """The in-scope Assessment, or the item's end when FS says it is gone, invalid or out of scope.
        The record's people go into `masking`.

        Raises UpstreamError (the driver fails the item, or the run for auth trouble).
        """
        try:
            record = await self.client.get_assessment(self.exam_system, source_id)
            if record is None:
                return finished(self.pipeline, source_id, Action.SKIPPED, Reason.GONE, "FS answered 404")
            masking.add_people(people_of(record))
            assessment = parse_assessment(record)
        except InvalidSourceData as exc:
            return finished(self.pipeline, source_id, Action.FAILED, Reason.INVALID_SOURCE_DATA, f"FS record: {exc}")
        if assessment.id != source_id:
            return finished(
                self.pipeline,
                source_id,
                Action.FAILED,
                Reason.INVALID_SOURCE_DATA,
                "FS record: invalid field(s): id (differs from the listed id)",
            )
        reason = ineligible_reason(assessment, self.fs.startYear, self.fs.placeCodes)
        if reason is not None:
            return finished(self.pipeline, source_id, Action.SKIPPED, reason, assessment=assessment)
        return assessment


class FsPipeline(ABC, Generic[P]):
    """A pipeline from FS to a target: FS as its source (`FsSource`), the target's users looked up
    by FEIDE id once per run, and its item results. A pipeline plans each in-scope assessment
    (`plan_assessment`) and applies its plans."""

    name: ClassVar[PipelineName]
    exam_system: ClassVar[str]  # FS's eksamenssystem of the pipeline's assessments

    def __init__(
        self,
        ctx: RunContext,
        fs: FsClient,
        target: UpstreamAdapter,
        find_user: Callable[[str], Awaitable[int | None]],
    ) -> None:
        self.ctx = ctx
        self.fs = fs
        self.source = FsSource(self.name, self.exam_system, ctx, fs)
        self._target = target
        # FEIDE id -> the target's userId (or None): one look-up per person per run
        self._users: LookupCache[str, int | None] = LookupCache(find_user)

    async def discover(self) -> Discovery:
        return await self.source.discover()

    async def plan(self, source_id: str, masking: MaskingContext) -> Plan[P]:
        return await self.source.plan(source_id, masking, self.plan_assessment)

    @abstractmethod
    async def plan_assessment(self, a: Assessment) -> Plan[P]:
        """What one in-scope assessment needs in the target."""

    async def users(self, a: Assessment) -> list[int]:
        """The target's userIds of the assessment's responsibles who are users, in FS order, each once."""
        return await users_found(self._users, a.responsibles)

    def result(
        self,
        a: Assessment,
        action: Action,
        reason: Reason | None = None,
        message: str = "",
        *,
        target_id: str | int | None = None,
        writes: tuple[PlannedWrite, ...] = (),
        responsibles_found: int | None = None,
    ) -> ItemResult:
        return finished(
            self.name,
            a.id,
            action,
            reason,
            message,
            assessment=a,
            target_id=target_id,
            writes=writes,
            responsibles_found=responsibles_found,
        )

    async def aclose(self) -> None:
        self._users.close()
        await self.fs.aclose()
        await self._target.aclose()
