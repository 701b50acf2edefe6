"""Audit records (contracts/sinks.md): one per item handled, identifiers and counts only.

An `AuditRecord` is what every sink takes (the JSON log line, Humio, Slack, the audit history
store); `as_json` is the contract's shape, field for field.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Any, Protocol

from examsync.api.spec import InstitutionSpec, PipelineName
from examsync.domain.outcomes import Action, ItemResult, Reason

AUDIT_LOGGER = "examsync.audit"
_log = logging.getLogger(AUDIT_LOGGER)


class Submodule(StrEnum):
    """Which step of the pipeline wrote the record."""

    PLAN = "plan"  # nothing written (or DryRun)
    APPLY = "apply"
    SUPERVISOR = "supervisor"  # praktikportalen-wiseflow: one supervisor of a period


@dataclass(frozen=True, slots=True)
class Responsibles:
    """`hovedansvarlige`: responsibles FS names, and how many of them were found as users."""

    found: int | None
    total: int


@dataclass(frozen=True, slots=True)
class SupervisorPlace:
    """A supervisor's place among its period's supervisors: a position, never the person."""

    position: int
    total: int


def format_timestamp(value: datetime) -> str:
    """ISO-8601 UTC with milliseconds and `Z`, as audit records carry it (a naive time is taken as UTC)."""
    return (value.astimezone(UTC) if value.tzinfo else value).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    module_id: PipelineName
    submodule: Submodule
    vurd_id: str | None
    decoded_vurd_id: str | None
    key: str
    error_message: str | None
    fs_id: str | None
    org_id: str | None
    hovedansvarlige: Responsibles | None
    inspera_instance: str | None
    success: bool
    action: Action
    reason: Reason | None
    title: str | None
    run_id: str
    timestamp: datetime
    dry_run: bool
    test_id: str | None = None  # absent from the JSON when None
    supervisor: SupervisorPlace | None = None  # absent from the JSON when None

    def as_json(self) -> dict[str, Any]:
        """The record as the log line and Humio carry it (contracts/sinks.md field names)."""
        return contract_json({name: getattr(self, name) for name in self.__slots__})


# absent from a record's JSON when None (every other field is always there, null or not)
_OPTIONAL = frozenset({"test_id", "supervisor"})


@functools.cache  # a handful of field names, asked for on every record
def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _json_value(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, Responsibles | SupervisorPlace):
        return {name: getattr(value, name) for name in value.__slots__}
    return value


def contract_json(values: Mapping[str, object]) -> dict[str, Any]:
    """A record's fields, by AuditRecord's field names, in the contract's JSON: camelCase names,
    enums as their values, the timestamp as `format_timestamp` writes it. Shared by the record and
    by a row of the audit history store read back."""
    return {
        _camel(name): _json_value(value) for name, value in values.items() if value is not None or name not in _OPTIONAL
    }


class RunFacts(Protocol):
    """What a record says of its run (a pipeline's RunContext)."""

    @property
    def spec(self) -> InstitutionSpec: ...
    @property
    def run_id(self) -> str: ...
    @property
    def dry_run(self) -> bool: ...
    @property
    def now(self) -> Callable[[], datetime]: ...


def audit_record(
    ctx: RunFacts, pipeline: PipelineName, result: ItemResult, *, supervisor: SupervisorPlace | None = None
) -> AuditRecord:
    spec = ctx.spec
    if supervisor is not None:
        submodule = Submodule.SUPERVISOR
    else:
        submodule = Submodule.APPLY if result.writes and not ctx.dry_run else Submodule.PLAN
    return AuditRecord(
        module_id=pipeline,
        submodule=submodule,
        vurd_id=result.source_id,
        decoded_vurd_id=result.decoded_id,
        key=result.key,
        error_message=result.message if result.action is Action.FAILED else None,
        fs_id=spec.fs.institutionNumber if spec.fs else None,
        org_id=spec.shortName,
        hovedansvarlige=(
            Responsibles(result.responsibles_found, result.responsibles_total)
            if result.responsibles_total is not None
            else None
        ),
        inspera_instance=_inspera_instance(ctx) if pipeline == PipelineName.FS_INSPERA else None,
        success=result.action is not Action.FAILED,
        action=result.action,
        reason=result.reason,
        title=result.title,
        run_id=ctx.run_id,
        timestamp=ctx.now(),
        dry_run=ctx.dry_run,
        test_id=result.target_id,
        supervisor=supervisor,
    )


def _inspera_instance(ctx: RunFacts) -> str | None:
    inspera = ctx.spec.inspera
    if inspera is None:
        return None
    return inspera.clientId or (inspera.baseUrl or "").split("//")[-1].split("/")[0] or None


def log_audit(record: AuditRecord) -> None:
    """Write one record as a JSON log line (the formatter puts the record's fields at top level)."""
    _log.info("audit", extra={"audit": record.as_json()})
