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
from examsync.audit import log_audit
from examsync.pipelines.base import AuditEmitter, Pipeline, RunContext, utcnow
from examsync.pipelines.driver import ProgressHook, run_pipeline
from examsync.pipelines.tasks import settle
from examsync.report import InstitutionReport, PipelineReport
from examsync.secrets import REQUIRED_KEYS, ResolvedSecrets, SecretMissing, SecretNotAllowed, SecretSource
from examsync.spec import InstitutionSpec
from examsync.state import InstitutionState, PipelineState

log = logging.getLogger("examsync.pipeline")

PipelineFactory = Callable[[RunContext, ResolvedSecrets], Pipeline]

# name -> factory; filled by `examsync.pipelines.registry` so the runner stays independent of adapters
FACTORIES: dict[str, PipelineFactory] = {}


class RunSink(Protocol):
    """Something that sees every audit record and the finished report (Humio, Slack)."""

    def record(self, record: dict[str, object]) -> None: ...

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


async def resolve_secrets(spec: InstitutionSpec, source: SecretSource) -> ResolvedSecrets:
    data: dict[str, dict[str, str]] = {}
    for field_path, name in spec.secret_refs():
        if name in data:
            continue
        secret = await source.get(name)
        if secret is None:
            raise SecretMissing(field_path, name)
        if secret.refused:
            raise SecretNotAllowed(field_path, name, secret.type)
        missing = [key for key in REQUIRED_KEYS.get(field_path, ()) if not secret.data.get(key)]
        if missing:
            raise SecretMissing(field_path, name, missing[0])
        data[name] = dict(secret.data)
    return ResolvedSecrets(data)


def check_hosts(spec: InstitutionSpec, allowlist: hosts.HostAllowlist) -> None:
    """The spec's URLs name allowed hosts (before any Secret is read). Raises HostRefused."""
    hosts.check_urls(allowlist, spec.urls())


def check_secret_hosts(spec: InstitutionSpec, secrets: ResolvedSecrets, allowlist: hosts.HostAllowlist) -> None:
    """URLs held in Secrets (the Slack webhook) name allowed hosts. Raises HostRefused."""
    hosts.check_urls(allowlist, [(field_path, secrets.value(field_path, name, key))
                                 for field_path, name, key in spec.secret_urls()])


async def run_institution(
    name: str,
    namespace: str,
    spec: InstitutionSpec,
    secrets: SecretSource,
    state: InstitutionState,
    options: RunOptions | None = None,
    checkpoint: Checkpoint = _noop_checkpoint,
) -> tuple[InstitutionReport, InstitutionState]:
    """Run every enabled pipeline of one Institution once. Never raises for upstream or pipeline
    trouble: a pipeline that fails is reported failed, and the others run to their end."""
    from examsync.pipelines import registry  # noqa: F401  (registers the factories)

    opts = options or RunOptions()
    dry_run = opts.dry_run or spec.mode == "DryRun"
    started = opts.now()
    institution = f"{namespace}/{name}"
    report = InstitutionReport(name=name, namespace=namespace, mode="DryRun" if dry_run else "Apply",
                               run_id=opts.run_id, started=started, enabled=spec.pipelines())
    allowlist = hosts.current()
    try:
        check_hosts(spec, allowlist)  # a refused host never gets to see a Secret
        resolved = await resolve_secrets(spec, secrets)
        check_secret_hosts(spec, resolved, allowlist)
        sinks = list(opts.sinks(spec, resolved, institution)) if opts.sinks else []
    except (hosts.HostRefused, SecretNotAllowed) as exc:
        report.error, report.error_reason, report.stalled = str(exc), exc.reason, True
        return report, state
    except SecretMissing as exc:
        report.error, report.stalled = str(exc), True
        return report, state

    current = InstitutionState(pipelines=dict(state.pipelines))
    lock = asyncio.Lock()

    def emit(record: dict[str, object]) -> None:
        opts.audit(record)
        for sink in sinks:
            sink.record(record)

    async def run_one(pipeline_name: str) -> PipelineReport:
        async def save(pstate: PipelineState) -> None:
            async with lock:
                current.pipelines[pipeline_name] = pstate
                await checkpoint(current)

        ctx = RunContext(institution=institution, spec=spec, run_id=opts.run_id, started=started,
                         dry_run=dry_run, state=current.pipeline(pipeline_name), audit=emit,
                         checkpoint=save, now=opts.now)
        count_keys: tuple[str, ...] = ()
        try:
            pipeline = FACTORIES[pipeline_name](ctx, resolved)
            count_keys = pipeline.count_keys
            concurrency = _concurrency(spec, pipeline_name)
            return await run_pipeline(pipeline, ctx, concurrency=concurrency, progress=opts.progress, stop=opts.stop)
        except Exception as exc:
            # One pipeline's trouble is that pipeline's failure: the others go on. Its state stays
            # as far as it got (never advanced), so its retry ids and pending creates are kept.
            log.error("pipeline failed", exc_info=True,
                      extra={"institution": institution, "pipeline": pipeline_name, "runId": opts.run_id})
            failed = PipelineReport(name=pipeline_name, counts=dict.fromkeys(count_keys, 0), started=started)
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


def _concurrency(spec: InstitutionSpec, pipeline: str) -> int:
    if pipeline == "fs-inspera" and spec.inspera is not None:
        return spec.inspera.concurrency
    if spec.wiseflow is not None:
        return spec.wiseflow.concurrency
    return 8
