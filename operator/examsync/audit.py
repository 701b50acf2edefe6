"""Audit records (contracts/sinks.md): one per item handled, identifiers and counts only."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from examsync.api.spec import PipelineName
from examsync.domain.outcomes import Action, ItemResult

if TYPE_CHECKING:
    from examsync.pipelines.base import RunContext

AUDIT_LOGGER = "examsync.audit"
_log = logging.getLogger(AUDIT_LOGGER)


def audit_record(ctx: RunContext, pipeline: PipelineName, result: ItemResult) -> dict[str, Any]:
    spec = ctx.spec
    record: dict[str, Any] = {
        "moduleId": pipeline,
        "submodule": "apply" if result.writes and not ctx.dry_run else "plan",
        "vurdId": result.source_id,
        "decodedVurdId": result.decoded_id,
        "key": result.key,
        "errorMessage": result.message if result.action is Action.FAILED else None,
        "fsId": spec.fs.institutionNumber if spec.fs else None,
        "orgId": spec.shortName,
        "hovedansvarlige": (
            {"found": result.responsibles_found, "total": result.responsibles_total}
            if result.responsibles_total is not None
            else None
        ),
        "insperaInstance": _inspera_instance(ctx) if pipeline == PipelineName.FS_INSPERA else None,
        "success": result.action is not Action.FAILED,
        "action": result.action.value,
        "reason": result.reason.value if result.reason else None,
        "title": result.title,
        "runId": ctx.run_id,
        "timestamp": ctx.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "dryRun": ctx.dry_run,
    }
    if result.target_id is not None:
        record["testId"] = result.target_id
    return record


def _inspera_instance(ctx: RunContext) -> str | None:
    inspera = ctx.spec.inspera
    if inspera is None:
        return None
    return inspera.clientId or (inspera.baseUrl or "").split("//")[-1].split("/")[0] or None


def log_audit(record: dict[str, Any]) -> None:
    """Write one record as a JSON log line (the formatter puts the record's fields at top level)."""
    _log.info("audit", extra={"audit": record})
