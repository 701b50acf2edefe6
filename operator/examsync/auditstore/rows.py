"""One audit record (contracts/sinks.md) as one row of the audit store, and back.

`AuditRow.from_record(record, institution).to_record() == record` for every record examsync
writes: every field has a column (`hovedansvarlige` as found/total, a supervisor's place as
position/total), and `testId` and `supervisor` are absent again when they were absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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


def format_timestamp(value: datetime) -> str:
    """ISO-8601 UTC with milliseconds and `Z`, as audit records carry it."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_timestamp(value: object) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.now(UTC)


def _text(value: object, column: str) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if not text.isascii():
        # lone surrogates cannot be stored as UTF-8
        text = text.encode("utf-8", "replace").decode("utf-8")
    if "\x00" in text:  # PostgreSQL text holds no NUL
        text = text.replace("\x00", "")
    return text[: LIMITS[column]]


def _int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return max(-(2**31), min(value, 2**31 - 1))


def _pair(value: object, first: str, second: str) -> tuple[int | None, int | None]:
    if not isinstance(value, Mapping):
        return None, None
    return _int(value.get(first)), _int(value.get(second))


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
    def from_record(cls, record: Mapping[str, object], institution: str) -> AuditRow:
        found, total = _pair(record.get("hovedansvarlige"), "found", "total")
        position, of = _pair(record.get("supervisor"), "position", "total")
        return cls(
            institution=_text(institution, "institution") or "",
            module_id=_text(record.get("moduleId"), "module_id"),
            submodule=_text(record.get("submodule"), "submodule"),
            vurd_id=_text(record.get("vurdId"), "vurd_id"),
            decoded_vurd_id=_text(record.get("decodedVurdId"), "decoded_vurd_id"),
            key=_text(record.get("key"), "key") or "",
            error_message=_text(record.get("errorMessage"), "error_message"),
            fs_id=_text(record.get("fsId"), "fs_id"),
            org_id=_text(record.get("orgId"), "org_id"),
            hovedansvarlige_found=found,
            hovedansvarlige_total=total,
            inspera_instance=_text(record.get("insperaInstance"), "inspera_instance"),
            success=record.get("success") is not False,
            test_id=_text(record.get("testId"), "test_id"),
            title=_text(record.get("title"), "title"),
            action=_text(record.get("action"), "action") or "",
            reason=_text(record.get("reason"), "reason"),
            run_id=_text(record.get("runId"), "run_id") or "",
            timestamp=parse_timestamp(record.get("timestamp")),
            dry_run=record.get("dryRun") is True,
            supervisor_position=position,
            supervisor_total=of,
        )

    @classmethod
    def from_mapping(cls, row: Mapping[Any, Any]) -> AuditRow:
        """A row as the database returns it (columns an older schema lacks are None)."""
        values: dict[str, Any] = {name: row.get(name) for name in cls.__slots__}
        values["timestamp"] = parse_timestamp(values["timestamp"])
        values["success"] = bool(values["success"])
        values["dry_run"] = bool(values["dry_run"])
        return cls(**values)

    def values(self) -> dict[str, Any]:
        """Column values for an INSERT."""
        return {name: getattr(self, name) for name in self.__slots__}

    def to_record(self) -> dict[str, Any]:
        """The audit record as it was written (contracts/sinks.md field names)."""
        record: dict[str, Any] = {
            "moduleId": self.module_id,
            "submodule": self.submodule,
            "vurdId": self.vurd_id,
            "decodedVurdId": self.decoded_vurd_id,
            "key": self.key,
            "errorMessage": self.error_message,
            "fsId": self.fs_id,
            "orgId": self.org_id,
            "hovedansvarlige": (
                {"found": self.hovedansvarlige_found, "total": self.hovedansvarlige_total}
                if self.hovedansvarlige_total is not None
                else None
            ),
            "insperaInstance": self.inspera_instance,
            "success": self.success,
            "action": self.action,
            "reason": self.reason,
            "title": self.title,
            "runId": self.run_id,
            "timestamp": format_timestamp(self.timestamp),
            "dryRun": self.dry_run,
        }
        if self.test_id is not None:
            record["testId"] = self.test_id
        if self.supervisor_position is not None:
            record["supervisor"] = {"position": self.supervisor_position, "total": self.supervisor_total}
        return record
