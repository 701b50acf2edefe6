"""`examsync sync --audit-db` and `examsync history` as a user runs them: real processes against
the sandbox and both databases. The rows are the audit records the sync wrote to its log stream,
field for field; history prints them newest first, per Institution or per item, text and JSON."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from examsync.adapters.auditstore.store import AuditStore
from examsync.audit import format_timestamp
from examsync.sinks import StoreSink
from examsync.store_url import StoreUrl
from examsync_sandbox import seed_no
from examsync_sandbox.demo import write_manifests
from examsync_sandbox.server import Sandbox
from tests.support.audit_records import record_of
from tests.support.audit_store import stored_records
from tests.support.pg_server import PostgresServer, free_port

INF1000 = "uio-new"
LINE_FIELDS = frozenset({"time", "level", "logger", "message", "institution"})


async def examsync(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "examsync",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("EXAMSYNC_AUDIT")}, **(env or {})},
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def audit_lines(stderr: str) -> list[dict[str, Any]]:
    """The audit records among the JSON lines: the record's fields, without what every line carries
    (its time, level, logger and message, the Institution it is about)."""
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [
        {k: v for k, v in line.items() if k not in LINE_FIELDS}
        for line in lines
        if line.get("logger") == "examsync.audit"
    ]


def password_of(url: str) -> str:
    return str(StoreUrl.parse(url).url.password or "")


async def test_sync_writes_its_audit_records_and_history_reads_them_back(
    sandbox: Sandbox, store_url: str, tmp_path: Path
) -> None:
    (uio,) = [f for f in write_manifests(sandbox, tmp_path / "manifests") if f.name == "examsync-uio.yaml"]
    state = tmp_path / "state.json"
    sync = ("sync", "-f", str(uio), "--allow-loopback", "--state", str(state), "-o", "json", "--audit-db", store_url)
    code, _, err_first = await examsync(*sync)
    assert code == 1  # the seed fails some items on purpose; the store changes nothing of that
    sandbox.world("fs").touch(seed_no.CASES[INF1000])  # listed again, nothing examsync sends changed
    code, _, err_second = await examsync(*sync)
    assert code == 1
    written = audit_lines(err_first) + audit_lines(err_second)
    assert len(written) > 15
    assert await stored_records(store_url, "examsync/uio") == written  # field for field, in order

    # an old record, from before the window --since asks for
    old = {**written[0], "runId": "oldrun", "timestamp": format_timestamp(datetime.now(UTC) - timedelta(days=9))}
    store = AuditStore(StoreUrl.parse(store_url))
    await store.start()
    StoreSink(store, "examsync/uio").record(record_of(old))
    await store.close()

    history = ("history", "-n", "examsync", "uio", "--audit-db", store_url)
    code, out, err = await examsync(*history, "-o", "json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["institution"] == "examsync/uio" and shown["key"] is None and shown["more"] is False
    assert shown["records"] == [*reversed(written), old]  # newest first

    code, out, _ = await examsync(*history, "-o", "json", "--since", "7d")
    assert json.loads(out)["records"] == list(reversed(written))
    code, out, _ = await examsync(*history, "-o", "json", "--since", "1h", "--limit", "3")
    page = json.loads(out)
    assert page["records"] == list(reversed(written))[:3] and page["more"] is True and page["since"]

    key = f"fs-inspera:{seed_no.CASES[INF1000]}"
    code, out, _ = await examsync(*history, key, "-o", "json")
    item = json.loads(out)["records"]
    assert [r["action"] for r in item] == ["unchanged", "created"]
    assert item == [r for r in reversed(written) if r["key"] == key]
    assert item[0]["testId"] == item[1]["testId"]

    code, out, err = await examsync(*history, key)
    assert code == 0, err
    assert f"examsync/uio {key}: 2 audit record(s)" in out
    assert "unchanged" in out and "created" in out and "Introduksjon til programmering" in out and "2/2" in out
    code, out, _ = await examsync(*history)
    assert code == 0 and "KEY" in out and "Conflict" in out and "InvalidSourceData" in out

    code, out, _ = await examsync("history", "-n", "examsync", "nobody", "--audit-db", store_url)
    assert code == 0 and "examsync/nobody: no audit records" in out

    secret = password_of(store_url)
    if secret:
        assert all(secret not in text for text in (err_first, err_second, out, err))


async def test_history_from_the_environment_and_its_errors(postgres: PostgresServer, tmp_path: Path) -> None:
    empty = postgres.create_database()
    code, out, err = await examsync("history", "uio", env={"EXAMSYNC_AUDIT_DB": empty})
    assert code == 1 and "no audit history here" in err and out == ""
    assert postgres.password not in err and "***" in err  # the URL is named, its password masked

    down = postgres.url(port=free_port())
    code, _, err = await examsync("history", "uio", "--audit-db", down)
    assert code == 1 and "OperationalError" in err and postgres.password not in err

    code, _, err = await examsync("history", "uio", "--audit-db", postgres.url(password="Wrong-Pass-77"))
    assert code == 1 and "password authentication failed" in err and "Wrong-Pass-77" not in err

    code, _, err = await examsync("history", "uio", "--audit-db", f"sqlite:///{tmp_path / 'missing.db'}")
    assert code == 2 and "no SQLite database at" in err
    assert not (tmp_path / "missing.db").exists()  # a mistyped path creates nothing

    code, _, err = await examsync("history", "uio", "--audit-db", "mysql://u:Pw-in-url-1@h/db")
    assert code == 2 and "unsupported database 'mysql'" in err and "Pw-in-url-1" not in err

    code, _, err = await examsync("history", "uio", "--audit-db", empty, "--since", "last week")
    assert code == 2 and "--since" in err

    code, _, err = await examsync("history", "uio")
    assert code == 2 and "--audit-db" in err


@pytest.mark.parametrize("command", [["sync", "-f", "x.yaml"], ["run"]])
async def test_a_wrong_url_stops_sync_and_run_before_anything_happens(command: list[str]) -> None:
    code, out, err = await examsync(*command, env={"EXAMSYNC_AUDIT_DB": "postgresql://app:Pw-in-url-2@db:port/app"})
    assert code == 2, err
    assert "EXAMSYNC_AUDIT_DB" in err or "--audit-db" in err
    assert "Pw-in-url-2" not in err + out
