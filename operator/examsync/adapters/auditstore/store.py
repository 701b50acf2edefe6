"""AuditStore: every audit record of the process into one SQL database, in batches, never in a run's way.

One store per process, shared by every Institution: each run's sink (`sinks.store.StoreSink`)
hands it each record as a row, a background task writes them in batches (`examsync.batching`), another
creates or migrates the schema and deletes rows past the retention period in batches. A store
that is down costs buffered records at worst, counted in
examsync_audit_records_dropped_total{sink="store"}; a run never waits for it and its result never
depends on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import delete, event, insert, select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from examsync import metrics
from examsync.adapters.auditstore import schema
from examsync.adapters.auditstore.rows import AuditRow
from examsync.audit import AuditRecord
from examsync.batching import BatchBuffer
from examsync.store_url import Backend, StoreUrl

log = logging.getLogger("examsync.adapters.auditstore")

SINK = "store"  # the `sink` label of examsync_audit_records_dropped_total
RETENTION_DAYS = 400
BATCH_SIZE = 500  # rows per INSERT at most
BATCH_SECONDS = 1.0  # a record waits at most about this long before it is written
CAPACITY = 20_000  # records buffered at most (two semester-start runs); beyond that dropped and counted
# time spent flushing at shutdown at most: after the runs' own grace (20 s + 5 s), within the pod's 30 s
FINISH_SECONDS = 3.0
RETENTION_BATCH = 5_000  # rows per DELETE: short transactions that let writes in between
RETENTION_EVERY = 3600.0  # seconds between retention passes
WAL_ATTEMPTS = 20  # asking again for WAL mode while another process switches the new file to it
CONNECT_TIMEOUT = 5  # seconds (libpq connect_timeout) unless the URL says otherwise

ROWS_WRITTEN = Counter(
    "examsync_audit_store_rows_written_total",
    "Audit records written to the audit history store.",
    registry=metrics.registry,
)
ROWS_DELETED = Counter(
    "examsync_audit_store_rows_deleted_total",
    "Audit history rows deleted as older than the retention period.",
    registry=metrics.registry,
)


def transient(exc: BaseException) -> bool:
    """A failure that passes (the server restarting, a lock, the network): keep the batch."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated)
    return isinstance(exc, OSError | TimeoutError)


def make_engine(url: StoreUrl, *, writer: bool = True) -> AsyncEngine:
    """An engine that connects only when first used. `writer`: SQLite transactions take the write
    lock at BEGIN, so concurrent writers wait (busy timeout) instead of failing mid-transaction."""
    connect_args: dict[str, Any] = {}
    if url.backend is Backend.POSTGRESQL:
        query = url.url.query
        if "connect_timeout" not in query:
            connect_args["connect_timeout"] = CONNECT_TIMEOUT
        if "application_name" not in query:
            connect_args["application_name"] = "examsync"
    else:
        connect_args["timeout"] = 10.0  # sqlite3's busy timeout
    engine = create_async_engine(
        url.url,
        connect_args=connect_args,
        hide_parameters=True,
        pool_pre_ping=True,
        **({"pool_size": 2, "max_overflow": 2} if url.backend is Backend.POSTGRESQL else {}),
    )
    if url.backend is Backend.SQLITE:
        _sqlite_transactions(engine, writer=writer)
    return engine


def _sqlite_transactions(engine: AsyncEngine, *, writer: bool) -> None:
    # sqlite3 opens transactions lazily and not for DDL; let BEGIN say where one starts, so a
    # migration is all or nothing (SQLAlchemy's documented recipe for the pysqlite drivers)
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if writer:
            _use_wal(cursor)  # readers (examsync history) never block writers
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def _use_wal(cursor: Any) -> None:
    """WAL mode, which the file keeps once set. Switching takes the file's lock without waiting for
    it (the busy timeout does not apply), so processes that open a new file at once may be told
    "database is locked": asked again, one of them has switched it and the rest find it so."""
    for attempt in range(WAL_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode")
            if str(cursor.fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.02 * (attempt + 1))  # at start only, a few times at most


@dataclass(frozen=True)
class RetentionPass:
    deleted: int
    batches: int


class AuditStore:
    """The process's audit history store. `start` and `close` once; a `sinks.store.StoreSink` per run."""

    def __init__(
        self,
        url: StoreUrl,
        *,
        retention_days: float = RETENTION_DAYS,
        batch_size: int = BATCH_SIZE,
        batch_seconds: float = BATCH_SECONDS,
        capacity: int = CAPACITY,
        finish_seconds: float = FINISH_SECONDS,
        retention_batch: int = RETENTION_BATCH,
        retention_every: float = RETENTION_EVERY,
        backoff: tuple[float, float] = (1.0, 30.0),
    ) -> None:
        if retention_days <= 0:
            raise ValueError("retention days must be more than 0")
        self.url = url
        self.retention = timedelta(days=retention_days)
        self.retention_batch = retention_batch
        self.retention_every = retention_every
        self._engine: AsyncEngine | None = None
        self._schema: int | None = None  # the version migrated to in this process
        self._schema_lock: asyncio.Lock | None = None
        self._maintenance: asyncio.Task[None] | None = None
        self._buffer: BatchBuffer[AuditRow] = BatchBuffer(
            self._write,
            sink=SINK,
            target=f"the audit store {url}",
            batch_size=batch_size,
            batch_seconds=batch_seconds,
            capacity=capacity,
            finish_seconds=finish_seconds,
            retryable=transient,
            backoff=backoff,
            describe=self.describe,
        )

    # --- the sinks' side (sinks/store.py) ----------------------------------------------------

    def take(self, record: AuditRecord, institution: str) -> None:
        """One record of `institution` (namespace/name) for writing; never blocks, never raises."""
        try:
            row = AuditRow.from_record(record, institution)
        except Exception:  # a record that cannot be a row: counted, never raised into the run
            metrics.AUDIT_DROPPED.labels(SINK).inc()
            return
        self._buffer.put(row)

    def flush_soon(self) -> None:
        self._buffer.flush_soon()

    @property
    def written(self) -> int:
        return self._buffer.sent

    @property
    def dropped(self) -> int:
        return self._buffer.dropped

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Create or migrate the schema and keep retention going, in the background: a store
        that is down when the process starts delays nothing."""
        if self._maintenance is None:
            self._maintenance = asyncio.get_running_loop().create_task(self._maintain(), name="audit-store")

    async def close(self) -> None:
        """Write what is buffered (at most `finish_seconds`), then let go of every connection."""
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
        await self._buffer.close()
        if self._buffer.dropped:
            log.warning("audit records not stored", extra={"dropped": self._buffer.dropped, "store": str(self.url)})
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    # --- the database ------------------------------------------------------------------------

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = make_engine(self.url)
        return self._engine

    async def migrate(self, target: int = schema.CURRENT) -> int:
        """Create or migrate the schema (once per process). Raises when the database cannot be reached."""
        if self._schema_lock is None:
            self._schema_lock = asyncio.Lock()
        async with self._schema_lock:
            if self._schema is None or self._schema < target:
                async with self.engine.begin() as conn:
                    self._schema = await schema.migrate(conn, target)
            return self._schema

    async def delete_expired(self, now: datetime | None = None) -> RetentionPass:
        """Delete rows older than the retention period, `retention_batch` rows per transaction."""
        await self.migrate()
        cutoff = (now or datetime.now(UTC)) - self.retention
        table = schema.audit_records
        deleted = batches = 0
        while True:
            oldest = select(table.c.id).where(table.c.timestamp < cutoff).limit(self.retention_batch)
            async with self.engine.begin() as conn:
                result = await conn.execute(delete(table).where(table.c.id.in_(oldest.scalar_subquery())))
            count = max(result.rowcount, 0)
            if count == 0:
                break
            batches += 1
            deleted += count
            ROWS_DELETED.inc(count)
            if count < self.retention_batch:
                break
            await asyncio.sleep(0)  # let the writer in
        if deleted:
            log.info("audit store retention", extra={"deleted": deleted, "cutoff": cutoff.isoformat()})
        return RetentionPass(deleted, batches)

    async def _write(self, batch: list[AuditRow]) -> None:
        await self.migrate()
        async with self.engine.begin() as conn:
            await conn.execute(insert(schema.audit_records), [row.values() for row in batch])
        ROWS_WRITTEN.inc(len(batch))

    async def _maintain(self) -> None:
        failing = False
        delay = 5.0
        while True:
            try:
                await self.delete_expired()
            except Exception as exc:  # the store is down: records wait in the buffer meanwhile
                if not failing:
                    log.warning("audit store not reachable: %s", self.describe(exc), extra={"store": str(self.url)})
                failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 300.0)
                continue
            if failing:
                log.info("audit store reachable again", extra={"store": str(self.url)})
            failing, delay = False, 5.0
            await asyncio.sleep(self.retention_every)

    def describe(self, exc: BaseException) -> str:
        """A failure in one line, with no parameter values and no password."""
        cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        first = (str(cause).strip().splitlines() or [""])[0]
        return self.url.scrub(f"{type(cause).__name__}: {first}"[:300])
