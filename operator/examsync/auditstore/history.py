"""`examsync history`: an Institution's audit records from the store, newest first, or one item's history."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from examsync.api.spec import parse_duration
from examsync.auditstore import schema
from examsync.auditstore.rows import AuditRow
from examsync.auditstore.store import make_engine
from examsync.auditstore.url import InvalidStoreUrl, StoreUrl
from examsync.commands.sync import EXIT_FAILED, EXIT_INVALID, EXIT_OK, plain

INSTITUTION_LIMIT = 100  # rows shown for an Institution unless --limit says otherwise
ITEM_LIMIT = 1000  # rows shown for one item (every run of 400 days at a 6 h interval is 1600)
_DAYS = re.compile(r"^([0-9]+)d$")
_ONE_LINE = {"TIME": 20, "RUN": 16, "KEY": 64, "ACTION": 24, "REASON": 24, "TEST ID": 16}


class HistoryUnavailable(Exception):
    """The store cannot answer (down, or no examsync schema there). Never holds the password."""


def parse_since(text: str) -> timedelta:
    """`--since`: a Go-style duration (90m, 36h) or whole days (7d)."""
    days = _DAYS.match(text.strip())
    if days:
        return timedelta(days=int(days.group(1)))
    return parse_duration(text.strip())


@dataclass(frozen=True)
class HistoryQuery:
    institution: str  # namespace/name
    key: str | None = None
    since: timedelta | None = None
    limit: int | None = None

    @property
    def effective_limit(self) -> int:
        return self.limit or (ITEM_LIMIT if self.key else INSTITUTION_LIMIT)


@dataclass
class History:
    query: HistoryQuery
    rows: list[AuditRow]
    more: bool  # older records exist beyond the limit
    cutoff: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "institution": self.query.institution,
            "key": self.query.key,
            "since": self.cutoff.strftime("%Y-%m-%dT%H:%M:%SZ") if self.cutoff else None,
            "records": [row.to_record() for row in self.rows],
            "more": self.more,
        }


async def read_history(url: StoreUrl, query: HistoryQuery, now: datetime | None = None) -> History:
    """Raises HistoryUnavailable when the store cannot be read."""
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
                raise HistoryUnavailable(f"{url}: no audit history here (examsync has not created its schema "
                                         "in this database)")
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


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def render_text(history: History, out: TextIO) -> None:
    query = history.query
    console = Console(file=out, width=max(180, Console(file=out).width))
    subject = f"{query.institution} {query.key}" if query.key else query.institution
    since = f" since {_time(history.cutoff)}" if history.cutoff else ""
    if not history.rows:
        console.print(plain(f"{subject}: no audit records{since}"), highlight=False)
        return
    table = Table(title=plain(f"{subject}: {len(history.rows)} audit record(s){since}, newest first"),
                  title_justify="left", box=box.SIMPLE_HEAD)
    columns = ["TIME", "RUN", *([] if query.key else ["KEY"]), "ACTION", "REASON", "TEST ID", "DETAIL"]
    rows = []
    for row in history.rows:
        action = f"{row.action} (dry run)" if row.dry_run else row.action
        key = row.key if row.supervisor_position is None else \
            f"{row.key} supervisor {row.supervisor_position}/{row.supervisor_total}"
        detail = [row.title or ""]
        if row.hovedansvarlige_total is not None:
            detail.append(f"responsibles {row.hovedansvarlige_found}/{row.hovedansvarlige_total}")
        if row.error_message:
            detail.append(row.error_message)
        rows.append([_time(row.timestamp), row.run_id, *([] if query.key else [key]), action, row.reason or "",
                     row.test_id or "", "; ".join(d for d in detail if d)])
    for n, column in enumerate(columns):
        # identifiers of ordinary length stay on one line; a longer (hostile) one folds rather than
        # pushing the other columns off the table
        longest = max(len(cells[n]) for cells in rows)
        table.add_column(column, overflow="fold", no_wrap=longest <= _ONE_LINE.get(column, 0))
    for cells in rows:
        table.add_row(*(plain(cell) for cell in cells))
    console.print(table)
    if history.more:
        console.print(f"older records not shown (newest {query.effective_limit}): use --limit or --since",
                      highlight=False)


async def run_history(url_text: str, query: HistoryQuery, output: str, out: TextIO, err: TextIO) -> int:
    """0 printed (even nothing), 1 the store cannot be read, 2 invalid input."""
    try:
        url = StoreUrl.parse(url_text)
        history = await read_history(url, query)
    except InvalidStoreUrl as exc:
        print(f"error: --audit-db: {exc}", file=err)
        return EXIT_INVALID
    except HistoryUnavailable as exc:
        print(f"error: {exc}", file=err)
        return EXIT_FAILED
    if output == "json":
        json.dump(history.as_json(), out, indent=2)
        out.write("\n")
    else:
        render_text(history, out)
    return EXIT_OK


def history_command(url_text: str, query: HistoryQuery, output: str, out: TextIO, err: TextIO) -> int:
    return asyncio.run(run_history(url_text, query, output, out, err))


__all__ = ["History", "HistoryQuery", "HistoryUnavailable", "history_command", "parse_since",
           "read_history", "run_history"]
