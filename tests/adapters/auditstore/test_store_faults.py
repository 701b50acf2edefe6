"""A store that is down, full or misnamed never changes a run: records are buffered (bounded),
what is lost is counted, and nothing prints the URL's password."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from examsync.adapters.auditstore.history import HistoryQuery
from examsync.adapters.auditstore.store import AuditStore
from examsync.commands.history import run_history
from examsync.report import InstitutionReport
from examsync.sinks import StoreSink
from examsync.store_url import InvalidStoreUrl, StoreUrl
from examsync_sandbox.demo import write_manifests
from examsync_sandbox.server import Sandbox
from tests.support.audit_records import record_of
from tests.support.audit_store import dropped, store_only, stored_records, stored_rows
from tests.support.pg_server import PostgresServer, free_port
from tests.support.seeded_runs import run_seeded


def outcome(report: InstitutionReport) -> dict[str, Any]:
    """What a run's result is made of: counts, reasons, failures, and whether it failed."""
    return {
        "failed": report.failed,
        "stalled": report.is_stalled,
        "counts": {n: p.counts for n, p in report.pipelines.items()},
        "reasons": {n: dict(p.reasons) for n, p in report.pipelines.items()},
        "failures": sorted((f.key, f.reason) for f in report.failures()),
    }


def down_postgres(postgres: PostgresServer, tmp_path: Path) -> str:
    return postgres.url(port=free_port())  # nothing listens there


def down_sqlite(postgres: PostgresServer, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'no-such-dir' / 'audit.db'}"


async def run_into(store: AuditStore, sandbox: Sandbox) -> tuple[InstitutionReport, list[dict[str, Any]]]:
    """UiO's seeded run with `store` its only sink: started before, closed (flushed) after."""
    await store.start()
    try:
        report, _, audit = await run_seeded(sandbox, "uio", sinks=store_only(store))
    finally:
        await store.close()
    return report, audit


@pytest.mark.parametrize("down", [down_postgres, down_sqlite], ids=["postgresql-wrong-port", "sqlite-no-dir"])
async def test_a_store_that_is_down_never_changes_a_run(
    sandbox: Sandbox,
    postgres: PostgresServer,
    tmp_path: Path,
    down: Callable[[PostgresServer, Path], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with Sandbox() as reference_sandbox:  # the same seed, no store at all
        reference, _, _ = await run_seeded(reference_sandbox, "uio")
    store = AuditStore(StoreUrl.parse(down(postgres, tmp_path)), finish_seconds=2.0)
    before = dropped()
    report, audit = await run_into(store, sandbox)
    assert outcome(report) == outcome(reference)
    assert len(audit) > 10
    assert store.written == 0
    assert store.dropped == len(audit) == dropped() - before  # every record, none silently lost
    assert any("audit records not delivered" in r.getMessage() for r in caplog.records)


async def test_records_wait_while_postgres_is_down_and_are_written_when_it_is_back(sandbox: Sandbox) -> None:
    server = PostgresServer().start()
    try:
        url = server.create_database()
        store = AuditStore(StoreUrl.parse(url), batch_seconds=0.1, finish_seconds=60.0)
        await store.start()
        await store.migrate()
        server.stop()  # a restart in the middle of a run: the records wait in the buffer
        before = dropped()
        try:
            report, _, audit = await run_seeded(sandbox, "uio", sinks=store_only(store))
            assert store.written == 0 and len(store._buffer) == len(audit)
            server.start()
        finally:
            await store.close()  # flushes now: the server is back
        assert report.pipelines["fs-inspera"].counts.created > 0
        assert store.dropped == 0 and dropped() == before
        assert await stored_records(url, "examsync/uio") == audit
    finally:
        server.remove()


async def test_a_full_buffer_drops_and_counts_instead_of_blocking(sandbox: Sandbox, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    store = AuditStore(StoreUrl.parse(url), capacity=5, batch_size=500, batch_seconds=3600)
    before = dropped()
    report, audit = await run_into(store, sandbox)
    assert not report.is_stalled and len(audit) > 5
    assert await stored_records(url) == audit[:5]  # the first five waited; the rest found no room
    assert store.dropped == len(audit) - 5 == dropped() - before


@pytest.mark.parametrize(
    "text",
    [
        "mysql://examsync:hunter2@db.example/audit",
        "postgresql://examsync:hunter2@db.example:notaport/audit",
        "hunter2",
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite://examsync:hunter2@host/audit.db",
    ],
)
def test_a_wrong_url_is_refused_with_a_message_that_holds_no_password(text: str) -> None:
    with pytest.raises(InvalidStoreUrl) as caught:
        StoreUrl.parse(text)
    message = str(caught.value)
    assert "hunter2" not in message
    assert "sqlite:///PATH" in message or "path" in message


def test_urls_are_shown_with_their_secrets_masked() -> None:
    url = StoreUrl.parse("postgresql://app:s3cr%40t@pg.example:5432/app?sslmode=verify-full&password=other")
    assert str(url) == "postgresql://app:***@pg.example:5432/app?sslmode=verify-full&password=***"
    assert url.secrets() == ("s3cr@t", "other")
    assert url.scrub("failed for s3cr@t and other") == "failed for *** and ***"
    assert url.url.drivername == "postgresql+psycopg" and url.url.query["sslmode"] == "verify-full"
    assert str(StoreUrl.parse("postgres://app@/app?host=/run/postgresql")) == "postgres://app@/app?host=/run/postgresql"
    assert StoreUrl.parse("sqlite:///.demo/audit.db").sqlite_path == Path(".demo/audit.db")


async def test_a_wrong_password_is_never_logged(postgres: PostgresServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-Password-42"
    store = AuditStore(StoreUrl.parse(postgres.url(password=wrong)), finish_seconds=2.0)
    await store.start()
    StoreSink(store, "examsync/uio").record(record_of({"key": "fs-inspera:x", "action": "created", "runId": "r"}))
    with pytest.raises(Exception) as caught:
        await store.migrate()
    await store.close()
    assert store.dropped == 1
    logged = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert "password authentication failed" in logged  # the reason is told ...
    assert wrong not in logged and postgres.password not in logged  # ... the password never
    assert wrong not in store.describe(caught.value)


async def test_hostile_values_are_stored_cut_to_size_never_refusing_a_batch(store_url: str) -> None:
    evil_title = "\x1b[31mred\x1b[0m \u202eevil\x00 \ud800 " + "x" * 50_000
    records = [
        {
            "key": "fs-inspera:" + "k" * 5_000,
            "action": "failed",
            "runId": "r",
            "title": evil_title,
            "errorMessage": "\x00" * 10,
            "hovedansvarlige": {"found": 10**30, "total": 2},
            "success": False,
            "testId": "1" * 1_000,
        },
        {"key": "fs-inspera:plain", "action": "created", "runId": "r", "timestamp": "2026-11-27T10:00:00.000Z"},
    ]
    store = AuditStore(StoreUrl.parse(store_url), batch_seconds=0.05)
    await store.start()
    try:
        for record in records:
            StoreSink(store, "examsync/" + "n" * 400).record(record_of(record))
    finally:
        await store.close()
    assert store.written == 2 and store.dropped == 0  # one odd record does not take the batch down
    hostile, plain_row = await stored_rows(store_url)
    assert len(hostile.key) == 512 and hostile.key.startswith("fs-inspera:kkk")
    assert hostile.title is not None and "\x00" not in hostile.title and len(hostile.title) == 10_000
    assert hostile.error_message == "" and hostile.test_id == "1" * 256
    assert hostile.hovedansvarlige_found == 2**31 - 1 and hostile.hovedansvarlige_total == 2
    assert plain_row.key == "fs-inspera:plain"

    out, err = io.StringIO(), io.StringIO()
    code = await run_history(StoreUrl.parse(store_url), HistoryQuery(("examsync/" + "n" * 400)[:320]), "text", out, err)
    assert code == 0, err.getvalue()
    assert "\x1b" not in out.getvalue() and "\u202e" not in out.getvalue()  # shown as escapes
    assert "\\x1b" in out.getvalue() and "\\u202e" in out.getvalue()


async def test_sync_with_a_store_that_is_down_exits_as_without_one(
    sandbox: Sandbox, postgres: PostgresServer, tmp_path: Path
) -> None:
    (uib,) = [f for f in write_manifests(sandbox, tmp_path / "m") if f.name == "examsync-uib.yaml"]
    args = (sys.executable, "-m", "examsync", "sync", "-f", str(uib), "--allow-loopback", "--dry-run", "-o", "json")
    results = []
    for extra in ((), ("--audit-db", postgres.url(port=free_port()))):
        proc = await asyncio.create_subprocess_exec(
            *args, *extra, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        (inst,) = json.loads(out)["institutions"]
        # what the run did; the plan's order is the order items finished in
        inst["plan"] = sorted(inst["plan"], key=lambda entry: (entry["key"], entry["action"]))
        results.append((proc.returncode, inst, err.decode()))
    (code, report, _), (code_down, report_down, err_down) = results
    assert code == code_down == 0 and report == report_down
    assert "audit records not delivered to the audit store" in err_down and postgres.password not in err_down
