"""Reading the audit history store: an Institution's records, newest first, or one item's history
(what `examsync history`, commands/history.py, prints)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from examsync.adapters.auditstore import schema
from examsync.adapters.auditstore.rows import AuditRow
from examsync.adapters.auditstore.store import make_engine
from examsync.store_url import InvalidStoreUrl, StoreUrl

INSTITUTION_LIMIT = 100  # rows shown for an Institution unless --limit says otherwise
ITEM_LIMIT = 1000  # rows shown for one item (every run of 400 days at a 6 h interval is 1600)


class HistoryUnavailable(Exception):
    """The store cannot answer (down, or no examsync schema there). Never holds the password."""


@dataclass(frozen=True)
class HistoryQuery:
    institution: str  # namespace/name
    key: str | None = None
    since: timedelta | None = None
    limit: int | None = None

    @property
    def effective_limit(self) -> int:
        return self.limit or (ITEM_LIMIT if self.key else INSTITUTION_LIMIT)


@dataclass(frozen=True)
class History:
    query: HistoryQuery
    rows: list[AuditRow]  # newest first
    more: bool  # older records exist beyond the limit
    cutoff: datetime | None  # the --since cut, when given


async def read_history(url: StoreUrl, query: HistoryQuery, now: datetime | None = None) -> History:
    """Raises InvalidStoreUrl for a SQLite file that does not exist, HistoryUnavailable when the
    store cannot be read."""
    path = url.sqlite_path
    if path is not None and not path.is_file():
        # connecting would create an empty file; a mistyped path deserves a plain answer
        raise InvalidStoreUrl(f"no SQLite database at {path}")
    cutoff = (now or datetime.now(UTC)) - query.since if query.since is not None else None
    engine = make_engine(url, writer=False)
    try:
        async with engine.connect() as conn:
            version = await conn.run_sync(schema.current_version)
            if version == 0:
                raise HistoryUnavailable(
                    f"{url}: no audit history here (examsync has not created its schema in this database)"
                )
            table = schema.audit_records
            columns = [c for c in table.c if schema.COLUMNS_SINCE.get(c.name, 1) <= version]
            stmt = select(*columns).where(table.c.institution == query.institution)
            if query.key is not None:
                stmt = stmt.where(table.c.key == query.key)
            if cutoff is not None:
                stmt = stmt.where(table.c.timestamp >= cutoff)
            stmt = stmt.order_by(table.c.timestamp.desc(), table.c.id.desc()).limit(query.effective_limit + 1)
            result = (await conn.execute(stmt)).mappings().all()
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        first = (str(cause).strip().splitlines() or [""])[0]
        raise HistoryUnavailable(url.scrub(f"{url}: {type(cause).__name__}: {first}"[:400])) from None
    finally:
        await engine.dispose()
    rows = [AuditRow.from_mapping(r) for r in result[: query.effective_limit]]
    return History(query, rows, len(result) > query.effective_limit, cutoff)
