"""The schema is created and migrated by examsync itself, versioned: from an empty database, from
the previous version with rows in it, all or nothing, and by two processes starting at once."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, inspect

from examsync.adapters.auditstore import schema as audit_schema
from examsync.adapters.auditstore import store as audit_store
from examsync.adapters.auditstore.rows import AuditRow
from examsync.adapters.auditstore.store import AuditStore
from examsync.sinks import StoreSink
from examsync.store_url import StoreUrl
from tests.support.audit_records import record_of
from tests.support.audit_store import execute, stored_records

COLUMNS = {f.name for f in dataclasses.fields(AuditRow)} | {"id"}
INDEXES = {"ix_audit_records_institution_key", "ix_audit_records_institution_time", "ix_audit_records_time"}


def record(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "moduleId": "fs-inspera",
        "submodule": "apply",
        "vurdId": f"id{n}",
        "decodedVurdId": f"185||X{n}",
        "key": f"fs-inspera:id{n}",
        "errorMessage": None,
        "fsId": "185",
        "orgId": "UiO",
        "hovedansvarlige": {"found": 1, "total": 2},
        "insperaInstance": "uio.inspera.no",
        "success": True,
        "action": "created",
        "reason": None,
        "title": f"Course {n}",
        "runId": "run1",
        "timestamp": f"2026-11-27T10:00:0{n}.123Z",
        "dryRun": False,
        "testId": str(1000 + n),
        **extra,
    }


async def shape(url: str) -> tuple[set[str], set[str], list[int]]:
    """Columns and indexes of the audit table, and the versions applied."""
    store = AuditStore(StoreUrl.parse(url))
    try:
        async with store.engine.connect() as conn:
            columns, indexes = await conn.run_sync(
                lambda c: (
                    {col["name"] for col in inspect(c).get_columns("audit_records")},
                    {str(ix["name"]) for ix in inspect(c).get_indexes("audit_records")},
                )
            )
    finally:
        await store.close()
    versions = [row[0] for row in await execute(url, "SELECT version FROM schema_version ORDER BY version")]
    return columns, indexes, versions


async def test_an_empty_database_gets_the_whole_schema(store_url: str) -> None:
    store = AuditStore(StoreUrl.parse(store_url))
    try:
        assert await store.migrate() == audit_schema.CURRENT == 2
    finally:
        await store.close()
    assert await shape(store_url) == (COLUMNS, INDEXES, [1, 2])
    again = AuditStore(StoreUrl.parse(store_url))  # the next start: nothing to do
    try:
        assert await again.migrate() == 2
    finally:
        await again.close()
    assert (await shape(store_url))[2] == [1, 2]


async def test_version_1_with_rows_is_migrated_to_version_2(store_url: str) -> None:
    old = AuditStore(StoreUrl.parse(store_url))
    try:
        assert await old.migrate(target=1) == 1  # the schema the previous release made
        v1_columns = [c.name for c in audit_schema.audit_records.c if c.name not in audit_schema.COLUMNS_SINCE]
        rows = [AuditRow.from_record(record_of(record(n)), "examsync/uio").values() for n in range(3)]
        rows = [{k: v for k, v in row.items() if k in v1_columns} for row in rows]
        async with old.engine.begin() as conn:
            await conn.execute(insert(audit_schema.audit_records), rows)
    finally:
        await old.close()
    columns, indexes, versions = await shape(store_url)
    assert versions == [1] and "supervisor_position" not in columns and "ix_audit_records_time" not in indexes

    new = AuditStore(StoreUrl.parse(store_url), batch_seconds=0.05)
    await new.start()
    try:
        assert await new.migrate() == 2
        supervised = record(9, submodule="supervisor", supervisor={"position": 3, "total": 5})
        StoreSink(new, "examsync/uio").record(record_of(supervised))
    finally:
        await new.close()
    assert await shape(store_url) == (COLUMNS, INDEXES, [1, 2])
    # the old rows as they were, the new columns empty for them; the new row with its supervisor
    assert await stored_records(store_url) == [record(0), record(1), record(2), supervised]


async def test_a_migration_that_fails_leaves_the_previous_version_whole(store_url: str) -> None:
    store = AuditStore(StoreUrl.parse(store_url))
    try:
        await store.migrate(target=1)
    finally:
        await store.close()
    # someone added one of version 2's columns by hand: version 2's second ALTER fails
    await execute(store_url, "ALTER TABLE audit_records ADD COLUMN supervisor_total INTEGER")
    failing = AuditStore(StoreUrl.parse(store_url))
    try:
        with pytest.raises(Exception, match="supervisor_total"):
            await failing.migrate()
    finally:
        await failing.close()
    columns, indexes, versions = await shape(store_url)
    assert versions == [1]
    assert "supervisor_position" not in columns  # the first ALTER was rolled back with the rest
    assert "ix_audit_records_time" not in indexes


async def test_two_processes_starting_at_once_migrate_once(store_url: str) -> None:
    stores = [AuditStore(StoreUrl.parse(store_url)) for _ in range(6)]
    try:
        assert await asyncio.gather(*(s.migrate() for s in stores)) == [2] * 6
    finally:
        for store in stores:
            await store.close()
    assert (await shape(store_url))[2] == [1, 2]


def test_migrations_are_numbered_in_order() -> None:
    versions = [m.version for m in audit_schema.MIGRATIONS]
    assert versions == list(range(1, len(versions) + 1)) and versions[-1] == audit_schema.CURRENT


def test_wal_mode_is_asked_for_again_while_another_process_holds_the_new_file(tmp_path: Path) -> None:
    """Switching a new file to WAL does not wait on the busy timeout: a process starting while another
    holds the file's lock is told "database is locked" at once, and must ask again."""
    path = tmp_path / "audit.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    starting = sqlite3.connect(path, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        starting.execute("PRAGMA journal_mode=WAL")
    threading.Timer(0.1, holder.rollback).start()
    audit_store._use_wal(starting.cursor())
    assert starting.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    starting.close()
    holder.close()
