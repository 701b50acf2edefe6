"""The audit store's tables and their migrations, applied by examsync itself on start.

`schema_version` holds one row per migration applied. Each migration is frozen once released:
a new version adds a migration, it never edits an old one, so a database made by any earlier
release reaches the same schema as a new one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger("examsync.adapters.auditstore")

TABLE = "audit_records"
# pg_advisory_xact_lock key: two processes starting at once migrate one after the other
_MIGRATION_LOCK = 0x6578616D73796E63  # "examsync"


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out. PostgreSQL keeps `timestamptz`; SQLite keeps fixed-width
    naive UTC text, so comparing and ordering it as text is comparing times."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


_Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements an INTEGER key only

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(200), nullable=False),
    Column("applied_at", UtcDateTime, nullable=False),
)


def _v1_columns() -> list[Column[Any]]:
    return [
        Column("id", _Id, primary_key=True, autoincrement=True),
        Column("institution", String(320), nullable=False),  # namespace/name
        Column("key", String(512), nullable=False),
        Column("module_id", String(64)),
        Column("submodule", String(32)),
        Column("vurd_id", String(256)),
        Column("decoded_vurd_id", String(256)),
        Column("error_message", Text),
        Column("fs_id", String(64)),
        Column("org_id", String(64)),
        Column("hovedansvarlige_found", Integer),
        Column("hovedansvarlige_total", Integer),
        Column("inspera_instance", String(256)),
        Column("success", Boolean, nullable=False),
        Column("test_id", String(256)),
        Column("title", Text),
        Column("action", String(16), nullable=False),
        Column("reason", String(64)),
        Column("run_id", String(64), nullable=False),
        Column("timestamp", UtcDateTime, nullable=False),
        Column("dry_run", Boolean, nullable=False),
    ]


def _v1_indexes(table: Table) -> list[Index]:
    return [
        # one item's history, newest first
        Index("ix_audit_records_institution_key", table.c.institution, table.c.key, table.c.timestamp),
        # an Institution's records, newest first / since a time
        Index("ix_audit_records_institution_time", table.c.institution, table.c.timestamp),
    ]


_V2_COLUMNS = (("supervisor_position", "INTEGER"), ("supervisor_total", "INTEGER"))

# The current shape, for queries (what the migrations below build).
audit_records = Table(
    TABLE,
    metadata,
    *_v1_columns(),
    Column("supervisor_position", Integer),
    Column("supervisor_total", Integer),
)
_v1_indexes(audit_records)
Index("ix_audit_records_time", audit_records.c.timestamp)  # retention scans by time alone

# columns each schema version has (history reads a database an older examsync left as it was)
COLUMNS_SINCE = {name: 2 for name, _ in _V2_COLUMNS}


def _v1(conn: Connection) -> None:
    """The audit records table, with look-ups by institution + key and institution + time."""
    frozen = MetaData()
    table = Table(TABLE, frozen, *_v1_columns())
    _v1_indexes(table)
    frozen.create_all(conn)


def _v2(conn: Connection) -> None:
    """A supervisor's place among a period's supervisors (praktikportalen-wiseflow), and an index
    on time alone so retention finds old rows without scanning every Institution's."""
    for name, sql_type in _V2_COLUMNS:
        conn.execute(text(f"ALTER TABLE {TABLE} ADD COLUMN {name} {sql_type}"))
    frozen = Table(TABLE, MetaData(), Column("timestamp", UtcDateTime))
    Index("ix_audit_records_time", frozen.c.timestamp).create(conn)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


MIGRATIONS = (
    Migration(1, "audit records, indexed by institution + key and institution + time", _v1),
    Migration(2, "supervisor position and total; index on time for retention", _v2),
)
CURRENT = MIGRATIONS[-1].version


def current_version(conn: Connection) -> int:
    """The version a database is at; 0 when examsync never created its schema there."""
    if not conn.dialect.has_table(conn, schema_version.name):
        return 0
    return int(conn.execute(select(func.coalesce(func.max(schema_version.c.version), 0))).scalar_one())


async def migrate(conn: AsyncConnection, target: int = CURRENT) -> int:
    """Bring the schema to `target` inside the caller's transaction; returns the version reached."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    return await conn.run_sync(_migrate, target)


def _migrate(conn: Connection, target: int) -> int:
    schema_version.create(conn, checkfirst=True)
    version = current_version(conn)
    if version > CURRENT:
        log.warning(
            "the audit store's schema is newer than this examsync knows; writing as version %d",
            CURRENT,
            extra={"schemaVersion": version},
        )
        return version
    for migration in MIGRATIONS:
        if version < migration.version <= target:
            migration.apply(conn)
            conn.execute(
                insert(schema_version).values(
                    version=migration.version, description=migration.description, applied_at=datetime.now(UTC)
                )
            )
            log.info(
                "audit store schema migrated",
                extra={"schemaVersion": migration.version, "migration": migration.description},
            )
            version = migration.version
    return version
