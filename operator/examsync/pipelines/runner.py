"""Run one Institution once: resolve its Secrets, build its pipelines, drive them, report.

The kopf layer, the CLI, the tests and the benchmark all call `run_institution`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from examsync import hosts
from examsync.api.conditions import ConditionReason
from examsync.api.spec import InstitutionSpec, Mode, PipelineName
from examsync.audit import AuditRecord, log_audit
from examsync.credentials import ResolvedSecrets, SecretSource, resolve_secrets
from examsync.errors import RunStoppingError
from examsync.pipelines.base import AuditEmitter, RunContext, utcnow
from examsync.pipelines.driver import ProgressHook, run_pipeline
from examsync.pipelines.registry import PIPELINES
from examsync.pipelines.tasks import settle
from examsync.report import InstitutionReport, PipelineReport
from examsync.state import InstitutionState, PipelineState

log = logging.getLogger("examsync.pipeline")


class RunSink(Protocol):
    """Something that sees every audit record and the finished report (Humio, Slack, the audit
    history store). `record` never blocks and never raises."""

    def record(self, record: AuditRecord) -> None: ...

    async def finish(self, report: InstitutionReport) -> None: ...


SinkFactory = Callable[[InstitutionSpec, ResolvedSecrets, str], Sequence[RunSink]]


@dataclass
class RunOptions:
    dry_run: bool = False
    progress: ProgressHook | None = None
    stop: asyncio.Event | None = None
    now: Callable[[], datetime] = utcnow
    audit: AuditEmitter = log_audit
    sinks: SinkFactory | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


Checkpoint = Callable[[InstitutionState], Awaitable[None]]


async def _noop_checkpoint(state: InstitutionState) -> None:
    return None


def check_hosts(spec: InstitutionSpec, allowlist: hosts.HostAllowlist) -> None:
    """The spec's URLs name allowed hosts (before any Secret is read). Raises HostRefused."""
    hosts.check_urls(allowlist, spec.urls())


def check_secret_hosts(spec: InstitutionSpec, secrets: ResolvedSecrets, allowlist: hosts.HostAllowlist) -> None:
    """URLs held in Secrets (the Slack webhook) name allowed hosts. Raises HostRefused."""
    hosts.check_urls(
        allowlist,
        [(use.path, secrets.value(use.ref, use.url_key)) for use in spec.secret_refs() if use.url_key is not None],
    )


async def run_institution(
    name: str,
    namespace: str,
    spec: InstitutionSpec,
    secrets: SecretSource,
    state: InstitutionState,
    options: RunOptions | None = None,
    checkpoint: Checkpoint = _noop_checkpoint,
) -> tuple[InstitutionReport, InstitutionState]:
    """Run every enabled pipeline of one Institution once. Never raises for what the pipelines,
    the Secrets or the upstreams do: a run that cannot start is reported with its reason, a
    pipeline that fails is reported failed, and the others run to their end."""
    opts = options or RunOptions()
    dry_run = opts.dry_run or spec.mode == Mode.DRY_RUN
    started = opts.now()
    institution = f"{namespace}/{name}"
    report = InstitutionReport(
        name=name,
        namespace=namespace,
        mode=Mode.DRY_RUN if dry_run else Mode.APPLY,
        run_id=opts.run_id,
        started=started,
        enabled=spec.pipelines(),
    )
    allowlist = hosts.current()
    try:
        check_hosts(spec, allowlist)  # a refused host never gets to see a Secret
        resolved = await resolve_secrets(spec, secrets)
        check_secret_hosts(spec, resolved, allowlist)
        sinks = list(opts.sinks(spec, resolved, institution)) if opts.sinks else []
    except RunStoppingError as exc:
        report.could_not_start(exc)
        return report, state
    except Exception as exc:  # a Secret store or sink that failed in a way no rule foresaw
        log.error("run could not start", exc_info=True, extra={"institution": institution, "runId": opts.run_id})
        report.error, report.error_reason = f"internal error: {type(exc).__name__}", ConditionReason.INTERNAL_ERROR
        return report, state

    current = InstitutionState(pipelines=dict(state.pipelines))
    lock = asyncio.Lock()

    def emit(record: AuditRecord) -> None:
        opts.audit(record)
        for sink in sinks:
            sink.record(record)

    async def run_one(pipeline_name: PipelineName) -> PipelineReport:
        async def save(pstate: PipelineState) -> None:
            async with lock:
                current.pipelines[pipeline_name] = pstate
                await checkpoint(current)

        ctx = RunContext(
            institution=institution,
            spec=spec,
            run_id=opts.run_id,
            started=started,
            dry_run=dry_run,
            state=current.pipeline(pipeline_name),
            audit=emit,
            checkpoint=save,
            now=opts.now,
        )
        kind = PIPELINES[pipeline_name]
        try:
            pipeline = kind.build(ctx, resolved)
            return await run_pipeline(
                pipeline, ctx, kind.counts(), concurrency=kind.concurrency(spec), progress=opts.progress, stop=opts.stop
            )
        except Exception as exc:
            # One pipeline's trouble is that pipeline's failure: the others go on. Its state stays
            # as far as it got (never advanced), so its retry ids and pending creates are kept.
            log.error(
                "pipeline failed",
                exc_info=True,
                extra={"institution": institution, "pipeline": pipeline_name, "runId": opts.run_id},
            )
            failed = PipelineReport(name=pipeline_name, counts=kind.counts(), started=started)
            failed.fail_internally(f"internal error in the pipeline ({type(exc).__name__})", opts.now())
            return failed
        finally:
            current.pipelines[pipeline_name] = ctx.state

    # The run reports only once every pipeline has stopped, and nothing of it runs on after that.
    results = await settle([run_one(p) for p in spec.pipelines()])
    report.pipelines = {r.name: r for r in results}
    for sink in sinks:
        try:
            await sink.finish(report)
        except Exception:  # a sink never changes a run's result
            log.warning("run sink failed", exc_info=True, extra={"institution": institution, "runId": opts.run_id})
    return report, current
