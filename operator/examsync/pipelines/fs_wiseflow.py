"""Pipeline fs-wiseflow: FS assessments (eksamenssystem WISEFLOW) become WISEflow flows.

Per item: FS detail and eligibility (shared with fs-inspera, `fs_source`) → find the flow by its
FS external-source reference → create (with managers found by FEIDE id), update metadata or
dates that differ, or leave alone (unchanged, FlowClosed, Conflict). Rules: contracts/fs.md and
contracts/wiseflow.md (A).

The flow search answers everything the rules compare (state, title, subtitle, both date pairs,
the external source references, the creation time): one search per item, no per-flow look-up.

Create and link are two calls. A pending create is recorded in state (and saved) before the
create is sent; a later run that finds no flow by reference but has a pending create searches
for open flows with its title and subtitle created since it was recorded (the search's
`createdAt` filter), and links the one that carries no FS reference instead of creating a second.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from examsync.adapters import factory
from examsync.adapters.errors import ClientError, UpstreamError
from examsync.adapters.fs.client import FsClient
from examsync.adapters.upstream.error_text import MaskingContext
from examsync.adapters.wiseflow.client import WiseflowClient
from examsync.adapters.wiseflow.models import CreatedAtFilter, FlowSearch, SearchMetadata
from examsync.api.spec import FsFlowsSpec, PipelineName
from examsync.credentials import ResolvedSecrets
from examsync.domain.fs import Assessment
from examsync.domain.outcomes import Action, ItemResult, PlannedWrite, Reason, WriteAction
from examsync.domain.wiseflow import (
    ACTIVE_STATES,
    CREATE_FIELDS,
    FS_SOURCE_DESCRIPTION,
    DesiredFlow,
    FoundFlow,
    dates_diff,
    desired_flow,
    fs_reference,
    is_closed,
    metadata_diff,
    pending_created_from,
    pending_matches,
)
from examsync.errors import RunStoppingError
from examsync.pipelines.base import Plan, RunContext
from examsync.pipelines.fs_source import FsPipeline
from examsync.state import PendingCreate

LINK_FIELD = "reference"  # the external source's field: what linking a found flow writes


@dataclasses.dataclass(frozen=True)
class _Write:
    kind: str  # "create" | "link" (adopt a pending create's flow) | "update"
    assessment: Assessment
    desired: DesiredFlow
    flow_id: int | None = None
    managers: tuple[int, ...] = ()
    fields: tuple[str, ...] = ()  # for link/update: the flow fields that differ


class FsWiseflowPipeline(FsPipeline[_Write]):
    name: ClassVar[PipelineName] = PipelineName.FS_WISEFLOW
    exam_system: ClassVar[str] = "WISEFLOW"

    def __init__(self, ctx: RunContext, spec: FsFlowsSpec, fs: FsClient, wiseflow: WiseflowClient) -> None:
        super().__init__(ctx, fs, wiseflow, lambda feide_id: wiseflow.find_user(spec.feideUserDataTypeId, feide_id))
        self.spec = spec
        self.wf = wiseflow

    # --- plan ----------------------------------------------------------------------------------

    async def plan_assessment(self, a: Assessment) -> Plan[_Write]:
        desired = desired_flow(a)
        reference = fs_reference(a.id)
        found = await self.wf.search_flows(FlowSearch(metadata=SearchMetadata(externalSourceReference=reference)))
        hits = [f for f in found if reference in f.references]  # the filter's own matching is not ours
        if len(hits) > 1:
            conflict = f"{len(hits)} WISEflow flows carry this reference; none touched"
            return Plan(outcome=self.result(a, Action.FAILED, Reason.CONFLICT, conflict))
        if hits:
            if not self.ctx.dry_run:
                # linked: a create recorded as pending is finished
                self.ctx.state.pending.pop(a.id, None)
            return self._plan_found(a, desired, hits[0])
        pending = self.ctx.state.pending.get(a.id)
        if pending is not None:
            adopted = await self._find_pending(pending)
            if len(adopted) > 1:
                conflict = f"{len(adopted)} unlinked WISEflow flows match an earlier create; none touched"
                return Plan(outcome=self.result(a, Action.FAILED, Reason.CONFLICT, conflict))
            if adopted:
                flow = adopted[0]
                fields = (LINK_FIELD, *metadata_diff(desired, flow), *dates_diff(desired, flow))
                writes = (PlannedWrite(WriteAction.UPDATE, fields),)
                outcome = self.result(a, Action.CREATED, target_id=flow.flow_id, writes=writes)
                return Plan(
                    outcome=outcome,
                    writes=writes,
                    payload=_Write("link", a, desired, flow_id=flow.flow_id, fields=fields[1:]),
                )
        return await self._plan_create(a, desired)

    def _plan_found(self, a: Assessment, desired: DesiredFlow, flow: FoundFlow) -> Plan[_Write]:
        flow_id = flow.flow_id
        if is_closed(flow.state):
            return Plan(outcome=self.result(a, Action.SKIPPED, Reason.FLOW_CLOSED, target_id=flow_id))
        fields = (*metadata_diff(desired, flow), *dates_diff(desired, flow))
        if not fields:
            return Plan(outcome=self.result(a, Action.UNCHANGED, target_id=flow_id))
        writes = (PlannedWrite(WriteAction.UPDATE, fields),)
        return Plan(
            outcome=self.result(a, Action.UPDATED, target_id=flow_id, writes=writes),
            writes=writes,
            payload=_Write("update", a, desired, flow_id=flow_id, fields=fields),
        )

    async def _plan_create(self, a: Assessment, desired: DesiredFlow) -> Plan[_Write]:
        managers = await self.users(a)  # WISEflow userIds
        reason = None
        if not managers:
            managers, reason = [self.spec.fallbackManagerUserId], Reason.MISSING_RESPONSIBLE
        found = 0 if reason else len(managers)
        fields = tuple(f for f in CREATE_FIELDS if f != "marking" or desired.marking is not None)
        writes = (PlannedWrite(WriteAction.CREATE, fields),)
        outcome = self.result(a, Action.CREATED, reason, writes=writes, responsibles_found=found)
        return Plan(outcome=outcome, writes=writes, payload=_Write("create", a, desired, managers=tuple(managers)))

    async def _find_pending(self, pending: PendingCreate) -> list[FoundFlow]:
        """Flows an earlier, unconfirmed create may have made: open, the same title and subtitle,
        created since it was recorded, and linked to no FS assessment."""
        metadata = SearchMetadata(
            title=pending.title,
            states=list(ACTIVE_STATES),
            createdAt=CreatedAtFilter(from_=pending_created_from(pending.since)),
        )
        if pending.subtitle:
            metadata.subtitle = pending.subtitle
        hits = await self.wf.search_flows(FlowSearch(metadata=metadata))
        return [f for f in hits if pending_matches(f, pending.title, pending.subtitle, pending.since)]

    # --- apply ---------------------------------------------------------------------------------

    async def apply(self, plan: Plan[_Write], masking: MaskingContext) -> ItemResult:
        write = plan.work()
        flow_id = write.flow_id
        try:
            if write.kind == "create":
                flow_id = await self._create(write)
                await self.wf.patch_dates(flow_id, *write.desired.windows())
            else:
                assert flow_id is not None
                if write.kind == "link":
                    await self._link(write.assessment.id, flow_id)
                await self._update(flow_id, write)
        except RunStoppingError:
            raise
        except UpstreamError as exc:
            target = str(flow_id) if flow_id is not None else None
            return dataclasses.replace(plan.outcome.write_failed(exc.describe(masking)), target_id=target)
        return dataclasses.replace(plan.outcome, target_id=str(flow_id))

    async def _create(self, write: _Write) -> int:
        a, desired = write.assessment, write.desired
        # recorded and saved before the create is sent: a crash between create and link must be
        # answered on the next run by linking this flow, not by creating a second one
        self.ctx.state.pending[a.id] = PendingCreate(
            title=desired.title, subtitle=desired.subtitle, since=self.ctx.now()
        )
        await self.ctx.save()
        try:
            flow_id = await self.wf.create_flow(
                desired.title, desired.subtitle, self.spec.flowTypeId, list(write.managers)
            )
        except ClientError:
            # a definite refusal: no flow was made, so no later run may adopt a same-titled one
            self.ctx.state.pending.pop(a.id, None)
            await self.ctx.save()
            raise
        await self._link(a.id, flow_id)
        return flow_id

    async def _link(self, fs_id: str, flow_id: int) -> None:
        await self.wf.add_external_source(flow_id, fs_reference(fs_id), FS_SOURCE_DESCRIPTION)
        self.ctx.state.pending.pop(fs_id, None)
        await self.ctx.save()

    async def _update(self, flow_id: int, write: _Write) -> None:
        if {"title", "subtitle"} & set(write.fields):
            await self.wf.retitle(flow_id, write.desired.title, write.desired.subtitle)
        dates = [f for f in write.fields if f in ("participation", "marking")]
        if dates:
            await self.wf.patch_dates(flow_id, *write.desired.windows(dates))


def build(ctx: RunContext, secrets: ResolvedSecrets) -> FsWiseflowPipeline:
    wiseflow = ctx.spec.wiseflow
    if wiseflow is None or wiseflow.fsFlows is None:
        raise ValueError("spec.wiseflow.fsFlows is required for fs-wiseflow")
    if ctx.spec.fs is None:
        raise ValueError("spec.fs is required for an FS pipeline")
    fs = factory.fs_client(ctx.spec.fs, secrets)
    return FsWiseflowPipeline(ctx, wiseflow.fsFlows, fs, factory.wiseflow_client(wiseflow, secrets))
