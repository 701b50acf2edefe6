"""One audit record (contracts/sinks.md) as one row of the audit store, and back.

`AuditRow.from_record(record, institution).as_json() == record.as_json()` for every record
examsync writes: every field has a column (`hovedansvarlige` as found/total, a supervisor's place
as position/total), and `testId` and `supervisor` are absent again when they were absent. A row
read back keeps what the database holds as text (a later version's action or reason is shown as
it is), so reading never fails on a value this version does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from examsync.audit import AuditRecord, Responsibles, SupervisorPlace, contract_json

# Column widths (schema.py uses the same numbers for its VARCHARs; title and message are TEXT,
# bounded here only against a hostile upstream): longer text is cut, so one odd record never makes
# the database refuse a whole batch. The key and the institution fit one PostgreSQL index entry.
LIMITS = {
    "institution": 320,
    "key": 512,
    "module_id": 64,
    "submodule": 32,
    "vurd_id": 256,
    "decoded_vurd_id": 256,
    "error_message": 10_000,
    "fs_id": 64,
    "org_id": 64,
    "inspera_instance": 256,
    "test_id": 256,
    "title": 10_000,
    "action": 16,
    "reason": 64,
    "run_id": 64,
}


def _aware(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _text(text: str | None, column: str) -> str | None:
    if text is None:
        return None
    if not text.isascii():
        # lone surrogates cannot be stored as UTF-8
        text = text.encode("utf-8", "replace").decode("utf-8")
    if "\x00" in text:  # PostgreSQL text holds no NUL
        text = text.replace("\x00", "")
    return text[: LIMITS[column]]


def _int(value: int | None) -> int | None:
    """An INTEGER column's range (counts from a hostile upstream could exceed it)."""
    return None if value is None else max(-(2**31), min(value, 2**31 - 1))


@dataclass(frozen=True, slots=True)
class AuditRow:
    institution: str  # namespace/name
    module_id: str | None
    submodule: str | None
    vurd_id: str | None
    decoded_vurd_id: str | None
    key: str
    error_message: str | None
    fs_id: str | None
    org_id: str | None
    hovedansvarlige_found: int | None
    hovedansvarlige_total: int | None
    inspera_instance: str | None
    success: bool
    test_id: str | None
    title: str | None
    action: str
    reason: str | None
    run_id: str
    timestamp: datetime
    dry_run: bool
    supervisor_position: int | None = None  # schema version 2
    supervisor_total: int | None = None

    @classmethod
    def from_record(cls, record: AuditRecord, institution: str) -> AuditRow:
        responsibles, supervisor = record.hovedansvarlige, record.supervisor
        return cls(
            institution=_text(institution, "institution") or "",
            module_id=_text(record.module_id.value, "module_id"),
            submodule=_text(record.submodule.value, "submodule"),
            vurd_id=_text(record.vurd_id, "vurd_id"),
            decoded_vurd_id=_text(record.decoded_vurd_id, "decoded_vurd_id"),
            key=_text(record.key, "key") or "",
            error_message=_text(record.error_message, "error_message"),
            fs_id=_text(record.fs_id, "fs_id"),
            org_id=_text(record.org_id, "org_id"),
            hovedansvarlige_found=_int(responsibles.found) if responsibles else None,
            hovedansvarlige_total=_int(responsibles.total) if responsibles else None,
            inspera_instance=_text(record.inspera_instance, "inspera_instance"),
            success=record.success,
            test_id=_text(record.test_id, "test_id"),
            title=_text(record.title, "title"),
            action=_text(record.action.value, "action") or "",
            reason=_text(record.reason.value if record.reason else None, "reason"),
            run_id=_text(record.run_id, "run_id") or "",
            timestamp=_aware(record.timestamp),
            dry_run=record.dry_run,
            supervisor_position=_int(supervisor.position) if supervisor else None,
            supervisor_total=_int(supervisor.total) if supervisor else None,
        )

    @classmethod
    def from_mapping(cls, row: Mapping[Any, Any]) -> AuditRow:
        """A row as the database returns it (columns an older schema lacks are None)."""
        values: dict[str, Any] = {name: row.get(name) for name in cls.__slots__}
        values["timestamp"] = _aware(values["timestamp"])
        values["success"] = bool(values["success"])
        values["dry_run"] = bool(values["dry_run"])
        return cls(**values)

    def values(self) -> dict[str, Any]:
        """Column values for an INSERT."""
        return {name: getattr(self, name) for name in self.__slots__}

    def as_json(self) -> dict[str, Any]:
        """The audit record as it was written (contracts/sinks.md field names): `AuditRecord.as_json`."""
        responsibles = supervisor = None
        if self.hovedansvarlige_total is not None:
            responsibles = Responsibles(self.hovedansvarlige_found, self.hovedansvarlige_total)
        if self.supervisor_position is not None and self.supervisor_total is not None:
            supervisor = SupervisorPlace(self.supervisor_position, self.supervisor_total)
        columns = {name: getattr(self, name) for name in self.__slots__}
        fields = {name: columns.get(name) for name in AuditRecord.__slots__}
        return contract_json({**fields, "hovedansvarlige": responsibles, "supervisor": supervisor})
