"""`examsync history`: an Institution's audit records from the audit history store, newest first,
or one item's whole history, as text or JSON (contracts/sinks.md). `examsync` loads this module
(and SQLAlchemy with it) only when the command is asked for."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import click
from rich import box
from rich.console import Console
from rich.table import Table

from examsync.adapters.auditstore.history import History, HistoryQuery, HistoryUnavailable, read_history
from examsync.api.spec import parse_duration
from examsync.commands.options import audit_db_option
from examsync.commands.sync import EXIT_FAILED, EXIT_INVALID, EXIT_OK, plain
from examsync.settings import env_name
from examsync.store_url import InvalidStoreUrl, StoreUrl

_DAYS = re.compile(r"^([0-9]+)d$")
# columns kept on one line while their longest value is at most this long
_ONE_LINE = {"TIME": 20, "RUN": 16, "KEY": 64, "ACTION": 24, "REASON": 24, "TEST ID": 16}


def parse_since(text: str) -> timedelta:
    """`--since`: a Go-style duration (90m, 36h) or whole days (7d). Raises ValueError."""
    days = _DAYS.match(text.strip())
    if days:
        return timedelta(days=int(days.group(1)))
    return parse_duration(text.strip())


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def history_json(history: History) -> dict[str, Any]:
    """`--output json`: each record exactly as its audit log line has it."""
    return {
        "institution": history.query.institution,
        "key": history.query.key,
        "since": history.cutoff.strftime("%Y-%m-%dT%H:%M:%SZ") if history.cutoff else None,
        "records": [row.as_json() for row in history.rows],
        "more": history.more,
    }


def render_text(history: History, out: TextIO) -> None:
    query = history.query
    console = Console(file=out, width=max(180, Console(file=out).width))
    subject = f"{query.institution} {query.key}" if query.key else query.institution
    since = f" since {_time(history.cutoff)}" if history.cutoff else ""
    if not history.rows:
        console.print(plain(f"{subject}: no audit records{since}"), highlight=False)
        return
    table = Table(
        title=plain(f"{subject}: {len(history.rows)} audit record(s){since}, newest first"),
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    columns = ["TIME", "RUN", *([] if query.key else ["KEY"]), "ACTION", "REASON", "TEST ID", "DETAIL"]
    rows = []
    for row in history.rows:
        action = f"{row.action} (dry run)" if row.dry_run else row.action
        key = (
            row.key
            if row.supervisor_position is None
            else f"{row.key} supervisor {row.supervisor_position}/{row.supervisor_total}"
        )
        detail = [row.title or ""]
        if row.hovedansvarlige_total is not None:
            detail.append(f"responsibles {row.hovedansvarlige_found}/{row.hovedansvarlige_total}")
        if row.error_message:
            detail.append(row.error_message)
        rows.append(
            [
                _time(row.timestamp),
                row.run_id,
                *([] if query.key else [key]),
                action,
                row.reason or "",
                row.test_id or "",
                "; ".join(d for d in detail if d),
            ]
        )
    for n, column in enumerate(columns):
        # identifiers of ordinary length stay on one line; a longer (hostile) one folds rather than
        # pushing the other columns off the table
        longest = max(len(cells[n]) for cells in rows)
        table.add_column(column, overflow="fold", no_wrap=longest <= _ONE_LINE.get(column, 0))
    for cells in rows:
        table.add_row(*(plain(cell) for cell in cells))
    console.print(table)
    if history.more:
        console.print(
            f"older records not shown (newest {query.effective_limit}): use --limit or --since", highlight=False
        )


async def run_history(url: StoreUrl, query: HistoryQuery, output: str, out: TextIO, err: TextIO) -> int:
    """0 printed (even nothing), 1 the store cannot be read, 2 invalid input."""
    try:
        history = await read_history(url, query)
    except InvalidStoreUrl as exc:
        print(f"error: --audit-db: {exc}", file=err)
        return EXIT_INVALID
    except HistoryUnavailable as exc:
        print(f"error: {exc}", file=err)
        return EXIT_FAILED
    if output == "json":
        json.dump(history_json(history), out, indent=2)
        out.write("\n")
    else:
        render_text(history, out)
    return EXIT_OK


@click.command()
@click.argument("name")
@click.argument("key", required=False)
@click.option("-n", "--namespace", default="default", show_default=True, help="The Institution's namespace.")
@click.option("--since", metavar="DURATION", help="Only records newer than this: 90m, 36h, 7d.")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    help="Newest records shown at most (default 100 for an Institution, 1000 for one item).",
)
@audit_db_option("The audit history store to read")
def history(
    name: str,
    key: str | None,
    namespace: str,
    since: str | None,
    output: str,
    limit: int | None,
    audit_db: StoreUrl | None,
) -> None:
    """An Institution's audit records from the audit history store, newest first; with KEY (e.g.
    fs-inspera:MTg1fHx...), that item's whole history. Exit 0 printed, 1 store unreadable, 2 invalid."""
    if audit_db is None:
        raise click.UsageError(f"--audit-db URL (or {env_name('audit_db')}) names the audit history store")
    try:
        window = parse_since(since) if since is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    query = HistoryQuery(f"{namespace}/{name}", key, window, limit)
    sys.exit(asyncio.run(run_history(audit_db, query, output, sys.stdout, sys.stderr)))
