"""Pipeline praktikportalen-wiseflow: internship supervisors become external assessors on flows.

An item is one (flow, period): an active flow (not concluded or archived) carrying the external
source `praktikportalen-{period}`. Discovery is one flow search (its answer names each flow's
state and references) plus the source list of the flows that take part (for the state of their
sources). Per item: read the period → look up each supervisor's user →
write users whose fields changed (a digest in state says so) → add missing assessors →
on a flow not yet activated remove those this integration added who left the period → report
done/fail on the source. Rules: contracts/wiseflow.md (B) and contracts/praktikportalen.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any, ClassVar

from examsync.adapters import factory
from examsync.adapters.errors import ClientError, UpstreamError
from examsync.adapters.praktikportalen.client import PraktikportalenClient
from examsync.adapters.upstream.error_text import MaskingContext
from examsync.adapters.wiseflow.client import WiseflowClient
from examsync.adapters.wiseflow.models import FlowSearch, SearchMetadata, UserWrite
from examsync.api.spec import PipelineName, PraktikportalenSpec
from examsync.audit import SupervisorPlace, audit_record
from examsync.credentials import ResolvedSecrets
from examsync.domain.outcomes import Action, ItemResult, PlannedWrite, PraktikportalenCounts, Reason, WriteAction
from examsync.domain.wiseflow import (
    ACTIVE_STATES,
    ASSESSOR_FIELDS,
    ASSESSOR_KEY_PREFIX,
    LEGACY_KEY_PREFIXES,
    PP_REFERENCE_PREFIX,
    SOURCE_SYNC_FIELDS,
    USER_FIELDS,
    Assessor,
    FlowState,
    FoundFlow,
    SourceState,
    Supervisor,
    assessor_key,
    assessors_to_remove,
    body_digest,
    legacy_assessor_key,
    period_of,
    source_told,
    supervisor_problem,
    user_body,
    user_key,
)
from examsync.errors import RunStoppingError
from examsync.pipelines.base import Discovery, Plan, RunContext
from examsync.pipelines.lookups import LookupCache
from examsync.pipelines.tasks import settle

SOURCE_READS = 8  # source lists read at once during discovery


@dataclasses.dataclass(frozen=True)
class _Source:
    flow_id: int
    flow_state: FlowState
    flow_title: str | None
    reference: str
    period: str
    source_state: SourceState | None
    shared: bool  # the flow has more than one praktikportalen source


@dataclasses.dataclass
class _Supervisor:
    position: int
    key: str  # hashed user key
    user_id: int | None  # found (or, after apply, written)
    body: dict[str, Any]
    digest: str
    write: WriteAction | None = None  # when this item sends the user
    wait: bool = False  # another item of this run creates the user: take its userId
    add: bool = False  # not yet an assessor on the flow
    error: str | None = None


@dataclasses.dataclass
class _Work:
    source: _Source
    supervisors: list[_Supervisor]
    removals: list[Assessor]
    problems: list[tuple[int, str]]  # (position, why) of supervisors that cannot be imported
    total: int
    unknown_period: bool = False
    masking: MaskingContext = dataclasses.field(default_factory=MaskingContext)  # the period's people


class PraktikportalenWiseflowPipeline:
    name: ClassVar[PipelineName] = PipelineName.PRAKTIKPORTALEN_WISEFLOW

    def __init__(
        self,
        ctx: RunContext,
        spec: PraktikportalenSpec,
        wiseflow: WiseflowClient,
        praktikportalen: PraktikportalenClient,
        state_secret: bytes,
    ) -> None:
        self.ctx = ctx
        self.spec = spec
        self.wf = wiseflow
        self.pp = praktikportalen
        self._secret = state_secret  # keys the HMACs kept in state
        self._sources: dict[str, _Source] = {}
        self._legacy_markers: set[str] = set()  # assessor markers of the earlier, unkeyed format
        # praktikportal-ID -> WISEflow userId (or None): one look-up per supervisor per run, kept in
        # memory only (the durable state holds hashed keys)
        self._lookups: LookupCache[str, int | None] = LookupCache(
            lambda pid: wiseflow.find_user(spec.userDataTypeId, pid)
        )
        # hashed user key -> the userId once written: the one item that writes a user claims it,
        # so a supervisor in two periods is written once and counted once
        self._claims: dict[str, asyncio.Future[int]] = {}
        self._added: set[tuple[int, int]] = set()  # (flow, user) assessor adds sent in this run

    # --- discover ------------------------------------------------------------------------------

    async def discover(self) -> Discovery:
        try:
            flows = await self.wf.search_flows(FlowSearch(metadata=SearchMetadata(states=list(ACTIVE_STATES))))
            taking_part = [(f, periods) for f in flows if f.state in ACTIVE_STATES and (periods := _periods(f))]
            gate = asyncio.Semaphore(SOURCE_READS)

            async def states(flow_id: int) -> dict[str, SourceState | None]:
                async with gate:
                    return {s.reference: s.state for s in await self.wf.external_sources(flow_id)}

            listed = await settle([states(f.flow_id) for f, _ in taking_part])  # none left running on a failure
        except UpstreamError as exc:
            return Discovery(ids=[], listed=False, error=exc)
        self._take_legacy_keys()
        self._forget_closed_flows({f.flow_id for f in flows if f.state in ACTIVE_STATES})
        ids: list[str] = []
        for (flow, periods), source_states in zip(taking_part, listed, strict=True):
            for period, reference in periods.items():
                source_id = f"{flow.flow_id}:{period}"
                self._sources[source_id] = _Source(
                    flow_id=flow.flow_id,
                    flow_state=flow.state,
                    flow_title=flow.title,
                    reference=reference,
                    period=period,
                    source_state=source_states.get(reference),
                    shared=len(periods) > 1,
                )
                ids.append(source_id)
        return Discovery(ids=ids, discovered=len({s.flow_id for s in self._sources.values()}))

    def _take_legacy_keys(self) -> None:
        """Drop state keys of the unkeyed format from state (Apply); assessor markers among them are
        kept in memory for this run and carried over, keyed, when their flow is planned."""
        digests = self.ctx.state.digests
        legacy = [k for k in digests if k.startswith(LEGACY_KEY_PREFIXES)]
        self._legacy_markers = {k for k in legacy if k.startswith("assessor:")}
        if not self.ctx.dry_run:
            for k in legacy:
                del digests[k]

    def _forget_closed_flows(self, active: set[int]) -> None:
        """Drop (Apply) the assessor markers of flows no longer active: a concluded or archived flow
        is never changed again, so they can never be used; kept, they would only grow the state.
        A marker's value names its flow; markers of an older format (value "added") stay."""
        if self.ctx.dry_run:
            return
        digests = self.ctx.state.digests
        for key in [k for k, v in digests.items() if k.startswith(ASSESSOR_KEY_PREFIX) and v.isdigit()]:
            if int(digests[key]) not in active:
                del digests[key]

    def _marker(self, flow_id: int, user_id: int) -> str:
        return assessor_key(self._secret, flow_id, user_id)

    def _added_by_us(self, flow_id: int, assessors: list[Assessor]) -> set[int]:
        """userIds of the flow's assessors this integration added (markers in state)."""
        digests = self.ctx.state.digests
        ours: set[int] = set()
        for a in assessors:
            marker = self._marker(flow_id, a.user_id)
            if marker in digests:
                ours.add(a.user_id)
                if not self.ctx.dry_run:
                    digests[marker] = str(flow_id)  # markers of an older format learn their flow
            elif legacy_assessor_key(flow_id, a.user_id) in self._legacy_markers:
                ours.add(a.user_id)
                if not self.ctx.dry_run:
                    digests[marker] = str(flow_id)
        return ours

    async def aclose(self) -> None:
        self._lookups.close()
        await self.wf.aclose()
        await self.pp.aclose()

    # --- plan ----------------------------------------------------------------------------------

    def _key(self, source_id: str) -> str:
        return f"{self.name}:{source_id}"

    async def plan(self, source_id: str, masking: MaskingContext) -> Plan[_Work]:
        source = self._sources.get(source_id)
        if source is None:
            return Plan(
                outcome=self._result(
                    source_id, None, Action.FAILED, Reason.UPSTREAM_ERROR, "flow not found by discovery"
                )
            )
        try:
            return await self._plan(source_id, source, masking)
        except RunStoppingError:
            raise
        except UpstreamError as exc:
            return Plan(
                outcome=self._result(source_id, source, Action.FAILED, Reason.UPSTREAM_ERROR, exc.describe(masking))
            )

    async def _plan(self, source_id: str, source: _Source, masking: MaskingContext) -> Plan[_Work]:
        period = await self.pp.period(self.spec.praktikportalId, source.period)
        if period is None:
            work = _Work(source, [], [], [], 0, unknown_period=True, masking=masking)
            message = f"Praktikportalen has no period {source.period} under this licence"
            outcome = self._result(source_id, source, Action.FAILED, Reason.UNKNOWN_PERIOD, message)
            writes: tuple[PlannedWrite, ...] = (
                ()
                if source_told(source.source_state, ok=False)
                else (PlannedWrite(WriteAction.UPDATE, SOURCE_SYNC_FIELDS),)
            )
            outcome = dataclasses.replace(outcome, writes=writes)
            return Plan(outcome=outcome, writes=writes, payload=work)

        total = len(period.supervisors)
        for person in period.supervisors:
            masking.add(person.firstName, person.lastName, person.email, person.praktikportalId)
        problems: list[tuple[int, str]] = []
        valid: list[tuple[int, Supervisor]] = []
        seen: set[str] = set()
        for position, supervisor in enumerate(period.supervisors, start=1):
            problem = supervisor_problem(supervisor, position, total)
            if problem is not None:
                problems.append((position, problem))
            elif supervisor.praktikportalId not in seen:
                valid.append((position, supervisor))
            if supervisor.praktikportalId:
                seen.add(supervisor.praktikportalId)

        # every supervisor still in the period is looked up (those not importable too), so none
        # of them is ever taken for one who left
        people = {s.praktikportalId: s for s in period.supervisors if s.praktikportalId}
        keys = {pid: user_key(self._secret, self.spec.praktikportalId, self.spec.userDataTypeId, pid) for pid in people}
        found = await asyncio.gather(*(self._lookups.get(pid) for pid in people))
        user_ids = dict(zip(people, found, strict=True))
        in_period = {uid for uid in found if uid is not None}  # who must never be removed

        assessors = await self.wf.assessors(source.flow_id)
        present = {a.user_id for a in assessors}
        supervisors: list[_Supervisor] = []
        for position, supervisor in valid:
            assert supervisor.praktikportalId is not None
            body = user_body(supervisor, self.spec.externalAssessorRoleId, self.spec.userDataTypeId)
            key = keys[supervisor.praktikportalId]
            entry = _Supervisor(
                position=position,
                key=key,
                user_id=user_ids[supervisor.praktikportalId],
                body=body,
                digest=body_digest(self._secret, body),
            )
            if entry.user_id is None or self.ctx.state.digests.get(key) != entry.digest:
                # check and claim with no await between them: one item per run writes each user
                if key in self._claims:
                    entry.wait = entry.user_id is None
                else:
                    entry.write = WriteAction.CREATE if entry.user_id is None else WriteAction.UPDATE
                    self._claims[key] = _quiet_future()
            entry.add = entry.user_id is None or entry.user_id not in present
            supervisors.append(entry)

        ours = self._added_by_us(source.flow_id, assessors)
        removals: list[Assessor] = []
        if not source.shared:  # with several periods on one flow, "left the period" is not knowable here
            removals = assessors_to_remove(source.flow_state, assessors, in_period, ours)
        work = _Work(source, supervisors, removals, problems, total, masking=masking)
        writes = self._writes(work)
        # the outcome goes to the source when something was written or it changed since last told
        if writes or not source_told(source.source_state, ok=not problems):
            writes = (*writes, PlannedWrite(WriteAction.UPDATE, SOURCE_SYNC_FIELDS))
        outcome = self._outcome(source_id, work, writes)
        if self.ctx.dry_run or not writes:
            self._audit_supervisors(source_id, work)
        return Plan(outcome=outcome, writes=writes, payload=work)

    @staticmethod
    def _writes(work: _Work) -> tuple[PlannedWrite, ...]:
        writes = [PlannedWrite(s.write, USER_FIELDS) for s in work.supervisors if s.write is not None]
        writes += [PlannedWrite(WriteAction.CREATE, ASSESSOR_FIELDS) for s in work.supervisors if s.add]
        if work.removals:
            writes.append(PlannedWrite(WriteAction.UPDATE, ("assessors",)))
        return tuple(writes)

    def _result(
        self,
        source_id: str,
        source: _Source | None,
        action: Action,
        reason: Reason | None = None,
        message: str = "",
        *,
        counts: PraktikportalenCounts | None = None,
    ) -> ItemResult:
        return ItemResult(
            key=self._key(source_id),
            source_id=source_id,
            action=action,
            reason=reason,
            message=message,
            target_id=str(source.flow_id) if source else None,
            title=source.flow_title if source else None,
            counts=counts,
        )

    def _outcome(self, source_id: str, work: _Work, writes: tuple[PlannedWrite, ...]) -> ItemResult:
        sups = work.supervisors
        failed = [why for _, why in work.problems] + [
            f"supervisor {s.position} of {work.total}: {s.error}" for s in sups if s.error
        ]
        counts = PraktikportalenCounts(
            supervisorsCreated=sum(1 for s in sups if s.write is WriteAction.CREATE and not s.error),
            supervisorsUpdated=sum(1 for s in sups if s.write is WriteAction.UPDATE and not s.error),
            assessorsAdded=sum(1 for s in sups if s.add and not s.error),
            assessorsRemoved=len(work.removals),
        )
        if failed:
            # the driver counts the failed item once; each further failed supervisor counts too
            counts.failed = len(failed) - 1
            reason = Reason.INVALID_SOURCE_DATA if work.problems else Reason.UPSTREAM_ERROR
            message = "; ".join(failed)
            if len(message) > 280:
                message = f"{len(failed)} of {work.total} supervisors failed: {failed[0]}"
            result = self._result(source_id, work.source, Action.FAILED, reason, message, counts=counts)
        elif any(counts.model_dump().values()):
            result = self._result(source_id, work.source, Action.UPDATED, counts=counts)
        else:
            result = self._result(source_id, work.source, Action.UNCHANGED, counts=counts)
        return dataclasses.replace(result, writes=writes)

    def _audit_supervisors(self, source_id: str, work: _Work) -> None:
        """One audit record per supervisor handled: positions and counts only, never the person."""
        entries: list[tuple[int, Action, Reason | None, str]] = [
            (s.position, _supervisor_action(s), Reason.UPSTREAM_ERROR if s.error else None, s.error or "")
            for s in work.supervisors
        ]
        entries += [(position, Action.FAILED, Reason.INVALID_SOURCE_DATA, why) for position, why in work.problems]
        for position, action, reason, message in sorted(entries, key=lambda e: e[0]):
            result = self._result(source_id, work.source, action, reason, message)
            self.ctx.audit(audit_record(self.ctx, self.name, result, supervisor=SupervisorPlace(position, work.total)))

    # --- apply ---------------------------------------------------------------------------------

    async def apply(self, plan: Plan[_Work], masking: MaskingContext) -> ItemResult:
        work = plan.work()
        source = work.source
        source_id = f"{source.flow_id}:{source.period}"
        try:
            await self._apply_users(work)
            await self._apply_assessors(work)
            outcome = plan.outcome if work.unknown_period else self._outcome(source_id, work, plan.writes)
            # apply runs only with writes, and every plan with writes reports its outcome
            await self.wf.report_sync(source.flow_id, source.reference, outcome.action is not Action.FAILED)
        except UpstreamError as exc:
            self._release(work, exc)
            if isinstance(exc, RunStoppingError):
                raise
            self._audit_supervisors(source_id, work)
            # what was written before the failure still counts
            done = plan.outcome if work.unknown_period else self._outcome(source_id, work, ())
            return done.write_failed(exc.describe(masking))
        except BaseException:
            self._release(work, None)  # items waiting on this one's users must not wait forever
            raise
        self._audit_supervisors(source_id, work)
        return outcome

    def _release(self, work: _Work, error: UpstreamError | None) -> None:
        """Claims this item did not fulfil fail for the items waiting on them."""
        for entry in work.supervisors:
            claim = self._claims.get(entry.key)
            if entry.write is not None and claim is not None and not claim.done():
                claim.set_exception(error or UpstreamError("wiseflow", "write user", "not written"))

    async def _apply_users(self, work: _Work) -> None:
        for entry in work.supervisors:
            if entry.write is not None:
                claim = self._claims[entry.key]
                try:
                    user_id, created = await self.wf.upsert_user(UserWrite.model_validate(entry.body))
                except RunStoppingError:
                    raise
                except UpstreamError as exc:
                    entry.error = exc.describe(work.masking)
                    claim.set_exception(exc)
                    continue
                entry.user_id = user_id
                entry.write = WriteAction.CREATE if created else WriteAction.UPDATE
                self.ctx.state.digests[entry.key] = entry.digest
                claim.set_result(user_id)
            elif entry.wait:
                try:
                    entry.user_id = await asyncio.shield(self._claims[entry.key])
                except UpstreamError as exc:
                    entry.error = exc.describe(work.masking)

    async def _apply_assessors(self, work: _Work) -> None:
        flow_id = work.source.flow_id
        for entry in work.supervisors:
            if not entry.add or entry.error or entry.user_id is None:
                continue
            if (flow_id, entry.user_id) in self._added:
                entry.add = False
                continue
            self._added.add((flow_id, entry.user_id))
            marker = self._marker(flow_id, entry.user_id)
            newly_marked = marker not in self.ctx.state.digests
            # recorded before the add, so a crash right after it still knows who added the assessor
            self.ctx.state.digests[marker] = str(flow_id)
            await self.ctx.save()
            try:
                await self.wf.add_assessor(flow_id, entry.user_id, self.spec.externalAssessorTypeId)
            except RunStoppingError:
                raise
            except ClientError as exc:
                # refused: the spec defines no answer for a user who is an assessor already, so
                # look; one added meanwhile by someone else is not this integration's
                if await self._is_assessor(flow_id, entry.user_id):
                    entry.add = False
                    if newly_marked:
                        del self.ctx.state.digests[marker]
                    continue
                entry.error = exc.describe(work.masking)
            except UpstreamError as exc:
                # not resent (it may have been stored with its answer lost): look before failing
                if not await self._is_assessor(flow_id, entry.user_id):
                    entry.error = exc.describe(work.masking)
        for assessor in work.removals:
            await self.wf.remove_assessor(flow_id, assessor.assessor_id)
            self.ctx.state.digests.pop(self._marker(flow_id, assessor.user_id), None)

    async def _is_assessor(self, flow_id: int, user_id: int) -> bool:
        try:
            return any(a.user_id == user_id for a in await self.wf.assessors(flow_id))
        except RunStoppingError:
            raise
        except UpstreamError:
            return False


def _periods(flow: FoundFlow) -> dict[str, str]:
    """The Praktikportalen periods a flow takes part in: period -> the reference that names it
    (a reference of the current form wins over one of the earlier form for the same period)."""
    found: dict[str, str] = {}
    for reference in flow.references:
        period = period_of(reference)
        if period is not None and (period not in found or reference.startswith(PP_REFERENCE_PREFIX)):
            found[period] = reference
    return found


def _supervisor_action(entry: _Supervisor) -> Action:
    """created: this item created the user; updated: the user or the flow's assessors changed."""
    if entry.error:
        return Action.FAILED
    if entry.write is WriteAction.CREATE:
        return Action.CREATED
    if entry.write is WriteAction.UPDATE or entry.add:
        return Action.UPDATED
    return Action.UNCHANGED


def _quiet_future() -> asyncio.Future[int]:
    """A claim nobody may await: its exception is marked retrieved so none is logged."""
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def retrieve(done: asyncio.Future[int]) -> None:
        if not done.cancelled():
            with contextlib.suppress(BaseException):
                done.exception()

    future.add_done_callback(retrieve)
    return future


def build(ctx: RunContext, secrets: ResolvedSecrets) -> PraktikportalenWiseflowPipeline:
    wiseflow = ctx.spec.wiseflow
    if wiseflow is None or wiseflow.praktikportalen is None:
        raise ValueError("spec.wiseflow.praktikportalen is required for praktikportalen-wiseflow")
    spec = wiseflow.praktikportalen
    # the state's HMAC key: a per-Institution secret the run holds anyway
    state_secret = secrets.value(wiseflow.credentialsSecretRef, "clientSecret").encode("utf-8")
    return PraktikportalenWiseflowPipeline(
        ctx,
        spec,
        factory.wiseflow_client(wiseflow, secrets),
        factory.praktikportalen_client(spec, secrets),
        state_secret,
    )
