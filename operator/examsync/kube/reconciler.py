"""One Institution's reconciler: decide, run the pipelines once, write status, events, metrics.

It keeps the status it last wrote (the operator is the status' only writer), so a decision never
waits for its own write to come back through the watch stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ParamSpec

from examsync import metrics
from examsync.api.conditions import ConditionReason, ConditionStatus, ConditionType, get_condition
from examsync.api.spec import InstitutionSpec, SpecError, parse_duration, parse_spec
from examsync.api.status import InstitutionStatus
from examsync.kube import events, run_requests
from examsync.kube import status as st
from examsync.kube.config import Shared
from examsync.kube.run_requests import RunRequests
from examsync.kube.scheduler import decide, next_run
from examsync.kube.secret_source import KubeSecrets
from examsync.pipelines.runner import RunOptions, run_institution
from examsync.report import InstitutionReport
from examsync.state import InstitutionState

log = logging.getLogger("examsync.operator")

A = ParamSpec("A")


def observe(record: Callable[A, None], *args: A.args, **kwargs: A.kwargs) -> None:
    """Metrics are best effort: a failing one never stops a run."""
    try:
        record(*args, **kwargs)
    except Exception:
        log.exception("metrics call failed", extra={"call": record.__name__})


class InstitutionReconciler:
    def __init__(self, shared: Shared, name: str, namespace: str, status: Mapping[str, Any] | None) -> None:
        self.shared = shared
        self.name = name
        self.namespace = namespace
        self.key = f"{namespace}/{name}"
        self.status = InstitutionStatus.load(status)
        self._written = self.status.wire()  # what the server holds of what this operator wrote
        self._write_lock = asyncio.Lock()
        self._pending: InstitutionState | None = None
        self._hold_until: datetime | None = None  # an overdue run spread out after a restart

    # -- status -------------------------------------------------------------------------------

    async def write(self, desired: InstitutionStatus) -> bool:
        """Patch the status subresource from what was last written to ``desired``; False: no change."""
        async with self._write_lock:
            wire = desired.wire()
            patch = st.merge_patch(self._written, wire)
            if not patch:
                return False
            await self.shared.require_api().patch_status(self.namespace, self.name, patch)
            self.status, self._written = desired, wire
            return True

    async def checkpoint(self, state: InstitutionState) -> None:
        """Durable progress mid-run. Calls that arrive while a write is in flight share the next one
        (group commit); each returns only once a write holding its state has succeeded."""
        self._pending = state
        async with self._write_lock:
            pending, self._pending = self._pending, None
            if pending is None:
                return  # a write that started after this call's state was set already holds it
            progress = st.bounded_progress(pending)
            wire = progress.model_dump(mode="json", exclude_none=True)
            diff = st.merge_patch({"progress": self._written.get("progress")}, {"progress": wire})
            if not diff:
                return
            try:
                await self.shared.require_api().patch_status(self.namespace, self.name, diff)
            except BaseException:
                # not written: the next caller (one that shared this write, or a later one) tries
                # again rather than returning as if its state were saved
                if self._pending is None:
                    self._pending = pending
                raise
            self.status = self.status.model_copy(update={"progress": progress})
            self._written = {**self._written, "progress": wire}

    def _view(self, spec_raw: Mapping[str, Any]) -> None:
        try:
            interval = parse_duration(str(spec_raw.get("interval") or "6h")).total_seconds()
        except ValueError:
            interval = 0.0
        observe(metrics.set_view, self.key, self.status.conditions or [], spec_raw.get("suspend") is True, interval)

    # -- one step of the daemon -----------------------------------------------------------------

    async def step(self, body: Mapping[str, Any], *, first: bool, stop: asyncio.Event) -> float | None:
        """Run if due; return seconds until the next look (None: wait for a change of the object)."""
        cfg = self.shared.config
        meta = body.get("metadata") or {}
        spec_raw = body.get("spec") or {}
        generation = meta.get("generation")
        now = cfg.now()

        if spec_raw.get("suspend") is True:
            if await self.write(st.suspended(self.status, generation=generation, now=now)):
                log.info("suspended", extra={"institution": self.key})
            self._view(spec_raw)
            return None

        try:
            spec = parse_spec(spec_raw)
        except SpecError as exc:
            was = get_condition(self.status.conditions, ConditionType.STALLED)
            if await self.write(st.invalid(self.status, generation=generation, message=str(exc), now=now)):
                if was is None or was.message != str(exc) or was.status is not ConditionStatus.TRUE:
                    events.invalid_spec(body, str(exc))
                log.warning("invalid spec", extra={"institution": self.key, "problems": exc.problems})
            self._view(spec_raw)
            return None

        if stop.is_set():
            return None  # shutting down: no new run
        requests = run_requests.read(meta.get("annotations"), self.status)
        decision = decide(
            self.status,
            generation=generation,
            requested_at=requests.pending,
            interval=spec.interval_delta,
            now=now,
            rng=cfg.rng,
            first=first,
            hold_until=self._hold_until,
        )
        self._hold_until = decision.wake_at if decision.spread else None
        if decision.trigger is None:
            if decision.wake_at is None:
                return None
            return max(0.0, (decision.wake_at - now).total_seconds())
        await self.run(body, spec, trigger=decision.trigger, requests=requests, stop=stop)
        return 0.0

    async def run(
        self,
        body: Mapping[str, Any],
        spec: InstitutionSpec,
        *,
        trigger: str,
        requests: RunRequests,
        stop: asyncio.Event,
    ) -> InstitutionReport:
        cfg = self.shared.config
        generation = (body.get("metadata") or {}).get("generation")
        options = RunOptions(stop=stop, now=cfg.now, sinks=cfg.sinks)
        log.info("run started", extra={"institution": self.key, "runId": options.run_id, "trigger": trigger})
        await self.write(
            st.started(self.status, generation=generation, trigger=trigger, run_id=options.run_id, now=cfg.now())
        )
        self._view(body.get("spec") or {})
        state = st.read_progress(self.status)
        started = cfg.now()
        try:
            report, new_state = await run_institution(
                self.name,
                self.namespace,
                spec,
                KubeSecrets(self.shared.require_api(), self.namespace),
                state,
                options,
                checkpoint=self.checkpoint,
            )
        except Exception as exc:  # a bug must not leave Reconciling True forever
            log.exception("run failed", extra={"institution": self.key, "runId": options.run_id})
            report = self._failed_report(spec, options, started, f"internal error: {type(exc).__name__}")
            # the progress last written, not the one the run started from: what the run saved
            # (pending creates above all) must not be taken back
            new_state = st.read_progress(self.status)

        finished = cfg.now()
        upcoming = next_run(finished, spec.interval_delta, cfg.rng)
        if stop.is_set():  # cut short by a shutdown: the next operator resumes it soon, not in hours
            upcoming = finished
        previous_reasons = events.failure_reasons(self.status.failures)
        done = st.finished(
            self.status,
            report,
            state=new_state,
            generation=generation,
            next_run=upcoming,
            requested_at=requests.pending,
            now=finished,
        )
        await self.write(run_requests.record(done, requests))
        events.run_finished(body, report, upcoming - finished, previous_reasons)
        observe(metrics.record_run, self.key, report, spec)
        self._view(body.get("spec") or {})
        log.info(
            "run finished",
            extra={
                "institution": self.key,
                "runId": options.run_id,
                "result": st.result_of(report),
                "totals": report.totals(),
            },
        )
        return report

    def _failed_report(
        self, spec: InstitutionSpec, options: RunOptions, started: datetime, error: str
    ) -> InstitutionReport:
        report = InstitutionReport(
            name=self.name,
            namespace=self.namespace,
            mode=spec.mode,
            run_id=options.run_id,
            started=started,
        )
        report.error, report.error_reason = error, ConditionReason.INTERNAL_ERROR
        return report

    def forget(self) -> None:
        observe(metrics.forget, self.key)
