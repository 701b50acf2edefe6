"""Reading an audit store back for assertions, the way an operator's SQL client would."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, text

from examsync.adapters.auditstore.rows import AuditRow
from examsync.adapters.auditstore.schema import audit_records
from examsync.adapters.auditstore.store import AuditStore, make_engine
from examsync.api.spec import InstitutionSpec
from examsync.credentials import ResolvedSecrets
from examsync.pipelines.runner import RunSink, SinkFactory
from examsync.sinks import StoreSink
from examsync.store_url import StoreUrl
from tests.support.metric_samples import sample_value


def store_only(store: AuditStore) -> SinkFactory:
    """A run's sinks: the store's alone (whatever Humio or Slack the Institution names)."""

    def build(spec: InstitutionSpec, secrets: ResolvedSecrets, institution: str) -> Sequence[RunSink]:
        return [StoreSink(store, institution)]

    return build


async def stored_rows(url: str, institution: str | None = None) -> list[AuditRow]:
    """Every row (of one Institution), in the order written."""
    engine = make_engine(StoreUrl.parse(url), writer=False)
    try:
        async with engine.connect() as conn:
            stmt = select(audit_records).order_by(audit_records.c.id)
            if institution is not None:
                stmt = stmt.where(audit_records.c.institution == institution)
            return [AuditRow.from_mapping(r) for r in (await conn.execute(stmt)).mappings()]
    finally:
        await engine.dispose()


async def stored_records(url: str, institution: str | None = None) -> list[dict[str, Any]]:
    return [row.as_json() for row in await stored_rows(url, institution)]


async def raw_dump(url: str) -> str:
    """Every value of every row of examsync's tables as text (the personal-data scan reads this)."""
    engine = make_engine(StoreUrl.parse(url), writer=False)
    try:
        async with engine.connect() as conn:
            parts = []
            for table in ("audit_records", "schema_version"):
                for row in await conn.execute(text(f"SELECT * FROM {table}")):
                    parts.append(" | ".join(str(v) for v in row))
            return "\n".join(parts)
    finally:
        await engine.dispose()


async def execute(url: str, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    engine = make_engine(StoreUrl.parse(url), writer=False)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql), params or {})
            return list(result) if result.returns_rows else []
    finally:
        await engine.dispose()


def written() -> float:
    return sample_value("examsync_audit_store_rows_written_total") or 0.0


def dropped() -> float:
    return sample_value("examsync_audit_records_dropped_total", {"sink": "store"}) or 0.0


def deleted() -> float:
    return sample_value("examsync_audit_store_rows_deleted_total") or 0.0
