"""Pipeline fs-inspera: FS assessments (eksamenssystem INSPERA) become Inspera tests.

Per item: FS detail → eligibility → responsibles looked up by FEIDE id (cached per run) →
search by externalId → create, update (only differing managed fields), or leave alone
(unchanged, Disconnected, Conflict). Rules: contracts/fs.md and contracts/inspera.md.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from examsync.adapters import factory
from examsync.adapters.errors import UpstreamError
from examsync.adapters.fs.client import FsClient
from examsync.adapters.inspera.client import InsperaClient
from examsync.adapters.upstream.error_text import MaskingContext
from examsync.api.spec import PipelineName
from examsync.credentials import ResolvedSecrets
from examsync.domain.fs import Assessment
from examsync.domain.inspera import changed_fields, desired_test, is_linked
from examsync.domain.outcomes import Action, ItemResult, PlannedWrite, Reason, WriteAction
from examsync.errors import RunStoppingError
from examsync.pipelines.base import Plan, RunContext
from examsync.pipelines.fs_source import FsPipeline


@dataclasses.dataclass(frozen=True)
class _Write:
    action: WriteAction
    test_id: int | None
    body: dict[str, Any]


class FsInsperaPipeline(FsPipeline[_Write]):
    name: ClassVar[PipelineName] = PipelineName.FS_INSPERA
    exam_system: ClassVar[str] = "INSPERA"

    def __init__(self, ctx: RunContext, fs: FsClient, inspera: InsperaClient) -> None:
        super().__init__(ctx, fs, inspera, inspera.find_user)
        self.inspera = inspera

    async def plan_assessment(self, a: Assessment) -> Plan[_Write]:
        contributors = await self.users(a)  # Inspera userIds

        def result(
            action: Action,
            reason: Reason | None = None,
            message: str = "",
            target: int | None = None,
            writes: tuple[PlannedWrite, ...] = (),
        ) -> ItemResult:
            return self.result(
                a, action, reason, message, target_id=target, writes=writes, responsibles_found=len(contributors)
            )

        missing = Reason.MISSING_RESPONSIBLE if not contributors else None
        body = desired_test(a, contributors)
        hits = await self.inspera.search_tests(a.id)
        if len(hits) > 1:
            return Plan(
                outcome=result(
                    Action.FAILED, Reason.CONFLICT, f"{len(hits)} Inspera tests carry this externalId; none touched"
                )
            )
        if not hits:
            writes = (PlannedWrite(WriteAction.CREATE, tuple(body)),)
            return Plan(
                outcome=result(Action.CREATED, missing, writes=writes),
                writes=writes,
                payload=_Write(WriteAction.CREATE, None, body),
            )
        test_id = hits[0].assessmentRunId
        existing = await self.inspera.get_test(test_id)
        if existing is None:
            return Plan(
                outcome=result(
                    Action.FAILED,
                    Reason.UPSTREAM_ERROR,
                    "inspera get_test: HTTP 404: test found by search is gone",
                    test_id,
                )
            )
        if not is_linked(existing):
            return Plan(outcome=result(Action.SKIPPED, Reason.DISCONNECTED, target=test_id))
        changed = changed_fields(body, existing)
        if not changed:
            return Plan(outcome=result(Action.UNCHANGED, target=test_id))
        writes = (PlannedWrite(WriteAction.UPDATE, tuple(changed)),)
        return Plan(
            outcome=result(Action.UPDATED, missing, target=test_id, writes=writes),
            writes=writes,
            payload=_Write(WriteAction.UPDATE, test_id, body),
        )

    async def apply(self, plan: Plan[_Write], masking: MaskingContext) -> ItemResult:
        write = plan.work()
        try:
            if write.action is WriteAction.CREATE:
                test_id = await self.inspera.create_test(write.body)
            else:
                assert write.test_id is not None
                test_id = await self.inspera.update_test(write.test_id, write.body)
        except RunStoppingError:
            raise
        except UpstreamError as exc:
            return plan.outcome.write_failed(exc.describe(masking))
        return dataclasses.replace(plan.outcome, target_id=str(test_id))


def build(ctx: RunContext, secrets: ResolvedSecrets) -> FsInsperaPipeline:
    if ctx.spec.fs is None or ctx.spec.inspera is None:
        raise ValueError("spec.fs and spec.inspera are required for fs-inspera")
    fs = factory.fs_client(ctx.spec.fs, secrets)
    return FsInsperaPipeline(ctx, fs, factory.inspera_client(ctx.spec.inspera, secrets))
