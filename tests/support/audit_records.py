"""Audit records made up for tests of the sinks, from the fields their log lines carry."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from examsync.api.spec import PipelineName
from examsync.audit import AuditRecord, Responsibles, Submodule, SupervisorPlace
from examsync.domain.outcomes import Action, Reason


def record_of(fields: Mapping[str, Any]) -> AuditRecord:
    """An audit record from its contract fields (camelCase, as its log line has them); what is not
    given is made up."""
    given: dict[str, Any] = {
        "moduleId": "fs-inspera",
        "submodule": "plan",
        "vurdId": None,
        "decodedVurdId": None,
        "key": "fs-inspera:x",
        "errorMessage": None,
        "fsId": None,
        "orgId": None,
        "hovedansvarlige": None,
        "insperaInstance": None,
        "success": True,
        "action": "created",
        "reason": None,
        "title": None,
        "runId": "r",
        "timestamp": datetime.now(UTC).isoformat(),
        "dryRun": False,
        **fields,
    }
    responsibles, supervisor = given["hovedansvarlige"], given.get("supervisor")
    return AuditRecord(
        module_id=PipelineName(given["moduleId"]),
        submodule=Submodule(given["submodule"]),
        vurd_id=given["vurdId"],
        decoded_vurd_id=given["decodedVurdId"],
        key=given["key"],
        error_message=given["errorMessage"],
        fs_id=given["fsId"],
        org_id=given["orgId"],
        hovedansvarlige=Responsibles(responsibles["found"], responsibles["total"]) if responsibles else None,
        inspera_instance=given["insperaInstance"],
        success=given["success"],
        action=Action(given["action"]),
        reason=Reason(given["reason"]) if given["reason"] else None,
        title=given["title"],
        run_id=given["runId"],
        timestamp=datetime.fromisoformat(given["timestamp"]),
        dry_run=given["dryRun"],
        test_id=given.get("testId"),
        supervisor=SupervisorPlace(supervisor["position"], supervisor["total"]) if supervisor else None,
    )
