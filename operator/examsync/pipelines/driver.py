"""Drives any pipeline the same way: discover, then plan and apply each item with bounded
concurrency (items stream through; details are never all held at once), then report."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from examsync.adapters.errors import UpstreamError, stop_reason
from examsync.adapters.upstream.error_text import MaskingContext
from examsync.audit import audit_record
from examsync.domain.outcomes import Action, ItemResult, PipelineCounts, Reason
from examsync.errors import RunStoppingError
from examsync.pipelines.base import Pipeline, RunContext
from examsync.report import PipelineReport

P = TypeVar("P")

log = logging.getLogger("examsync.pipeline")

ProgressHook = Callable[[str, int, int], None]  # (pipeline, done, total)


def _failed(pipeline: str, source_id: str, reason: Reason, message: str) -> ItemResult:
    return ItemResult(
        key=f"{pipeline}:{source_id}", source_id=source_id, action=Action.FAILED, reason=reason, message=message
    )


async def run_pipeline(
    pipeline: Pipeline[P],
    ctx: RunContext,
    counts: PipelineCounts,
    *,
    concurrency: int = 8,
    progress: ProgressHook | None = None,
    stop: asyncio.Event | None = None,
) -> PipelineReport:
    """Run one pipeline to the end and return its report; ctx.state holds the state after it."""
    started = time.monotonic()
    report = PipelineReport(name=pipeline.name, counts=counts, started=ctx.started)
    # the run-stopping error, as rendered for its item
    fatal: tuple[RunStoppingError, str] | None = None
    try:
        discovery = await pipeline.discover()
        report.listed = discovery.listed
        if discovery.error is not None:
            reason, stalled = stop_reason(discovery.error)
            report.stop(str(discovery.error), reason, stalled=stalled)
            report.add_failure(pipeline.name, Reason.UPSTREAM_ERROR, str(discovery.error), ctx.now())
        ids = list(dict.fromkeys(discovery.ids))
        report.counts.add_discovered(len(ids) if discovery.discovered is None else discovery.discovered)

        queue: asyncio.Queue[str] = asyncio.Queue()
        for source_id in ids:
            queue.put_nowait(source_id)
        done = 0

        async def handle(source_id: str) -> ItemResult:
            nonlocal fatal
            if fatal is not None or (stop is not None and stop.is_set()):
                # stop taking new items: they stay in the retry set for the next run
                why = fatal[1] if fatal is not None else "operator stopping"
                return _failed(pipeline.name, source_id, Reason.UPSTREAM_ERROR, why)
            masking = MaskingContext()  # the item's people, added by the pipeline as it reads them
            try:
                plan = await pipeline.plan(source_id, masking)
                if plan.writes and not ctx.dry_run:
                    return await pipeline.apply(plan, masking)
                return plan.outcome
            except RunStoppingError as exc:
                upstream = exc if isinstance(exc, UpstreamError) else None
                text = upstream.describe(masking) if upstream is not None else str(exc)
                if fatal is None:
                    fatal = (exc, text)
                return _failed(pipeline.name, source_id, Reason.UPSTREAM_ERROR, text)
            except UpstreamError as exc:
                return _failed(pipeline.name, source_id, Reason.UPSTREAM_ERROR, exc.describe(masking))
            except Exception as exc:
                # A record no rule foresaw fails its item only; the run and the other items go on.
                log.error(
                    "item failed unexpectedly",
                    exc_info=True,
                    extra={"institution": ctx.institution, "pipeline": pipeline.name, "runId": ctx.run_id},
                )
                return _failed(
                    pipeline.name,
                    source_id,
                    Reason.INVALID_SOURCE_DATA,
                    f"unexpected error while handling the item ({type(exc).__name__})",
                )

        async def worker() -> None:
            nonlocal done
            while True:
                try:
                    source_id = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                result = await handle(source_id)
                report.add(result, ctx.now())
                if ctx.dry_run:
                    report.add_plan(result)
                ctx.audit(audit_record(ctx, pipeline.name, result))
                done += 1
                if progress is not None:
                    progress(pipeline.name, done, len(ids))

        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(ids))))))
    finally:
        await pipeline.aclose()
    if fatal is not None:  # the item's account of it wins over the listing's
        error, text = fatal
        report.stop(text, error.reason, stalled=error.stalled)
    # Failed ids are fetched again on later runs; a list failure keeps the watermark. DryRun
    # writes nothing, its progress included, so a later Apply run still sees every change.
    if not ctx.dry_run:
        ctx.state = ctx.state.advance(
            ctx.started, report.failed_ids, report.listed, relist_watermark=discovery.relist_watermark
        )
        try:
            await ctx.save()
        except Exception as exc:
            # the final status write (or state file) saves it again; until then the run has failed
            log.error(
                "progress could not be saved",
                exc_info=True,
                extra={"institution": ctx.institution, "pipeline": pipeline.name, "runId": ctx.run_id},
            )
            report.fail_internally(f"progress could not be saved ({type(exc).__name__})", ctx.now())
    report.duration = time.monotonic() - started
    log.info(
        "pipeline finished",
        extra={
            "institution": ctx.institution,
            "pipeline": pipeline.name,
            "runId": ctx.run_id,
            "counts": report.counts,
            "durationSeconds": round(report.duration, 3),
        },
    )
    return report
