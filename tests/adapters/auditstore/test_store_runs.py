"""Real runs of the seeded Institutions against the sandbox, their audit records into the store:
every row equals the record it came from, field for field, on SQLite and on PostgreSQL, and no
seeded person's data is anywhere in the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from examsync.adapters.auditstore.store import AuditStore
from examsync.sinks import sink_factory
from examsync.store_url import StoreUrl
from examsync_sandbox import seed_dk, seed_no
from examsync_sandbox.server import Sandbox
from tests.support.audit_store import dropped, raw_dump, store_only, stored_records, stored_rows, written
from tests.support.seeded_runs import run_seeded

NAMESPACE = "examsync"
# one Institution per pipeline: fs-inspera (with Humio and Slack sinks), fs-wiseflow, and
# praktikportalen-wiseflow (one record per supervisor as well)
INSTITUTIONS = ("uio", "ntnu", "ucx")


async def test_rows_equal_the_audit_records_of_real_runs(sandbox: Sandbox, store_url: str) -> None:
    store = AuditStore(StoreUrl.parse(store_url), batch_size=7)  # several batches per run
    await store.start()
    before_written, before_dropped = written(), dropped()
    audits: dict[str, list[dict[str, Any]]] = {}
    states = {}
    try:
        for name in INSTITUTIONS:
            _, states[name], audits[name] = await run_seeded(sandbox, name, sinks=sink_factory(store))
        # the second run of UiO: FS lists INF1000 again with nothing examsync sends changed
        sandbox.world("fs").touch(seed_no.CASES["uio-new"])
        _, _, again = await run_seeded(sandbox, "uio", states["uio"], sinks=sink_factory(store))
        audits["uio"] += again
    finally:
        await store.close()

    total = sum(len(a) for a in audits.values())
    assert total > 40
    for name, audit in audits.items():
        assert await stored_records(store_url, f"{NAMESPACE}/{name}") == audit, name
    assert store.written == total and store.dropped == 0
    assert written() - before_written == total and dropped() == before_dropped

    # what the contract asks of the columns, seen in the rows themselves
    rows = await stored_rows(store_url)
    assert {r.institution for r in rows} == {f"{NAMESPACE}/{n}" for n in INSTITUTIONS}
    assert {r.module_id for r in rows} == {"fs-inspera", "fs-wiseflow", "praktikportalen-wiseflow"}
    assert {r.action for r in rows} == {"created", "updated", "unchanged", "skipped", "failed"}
    assert all(r.success == (r.action != "failed") for r in rows)
    assert any(r.hovedansvarlige_total == 2 and r.hovedansvarlige_found == 1 for r in rows)
    assert any(r.supervisor_position is not None for r in rows)
    inf1000 = [r for r in rows if r.key == f"fs-inspera:{seed_no.CASES['uio-new']}"]
    assert [r.action for r in inf1000] == ["created", "unchanged"]
    assert inf1000[0].test_id == inf1000[1].test_id is not None
    assert all(r.timestamp.tzinfo is not None for r in rows)


def _fs_people(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in seed_no.PERSONAL_KEYS and isinstance(value, str):
                found.add(value)
            else:
                found |= _fs_people(value)
    elif isinstance(node, list):
        for item in node:
            found |= _fs_people(item)
    return found


def sqlite_files(path: Path) -> str:
    """The database file itself, every page of it, and its write-ahead log, as text."""
    files = [Path(f"{path}{suffix}") for suffix in ("", "-wal")]
    return "".join(f.read_bytes().decode("utf-8", "replace") for f in files if f.exists())


async def test_no_personal_data_in_the_database(sandbox: Sandbox, store_url: str) -> None:
    people = _fs_people(list(sandbox.world("fs").records.values())) | set(sandbox.world("inspera").users)
    for pid, first, last, email in seed_dk.SUPERVISORS.values():
        people |= {pid, f"{first} {last}", *([email] if email else [])}
    # the seed is meaningful: names, e-mails, phones, FEIDE ids, identity numbers, Praktikportalen ids
    assert any(len(v) == 11 and v.isdigit() for v in people) and any(v.startswith("+47") for v in people)
    assert any(v.startswith("TS-") for v in people) and len(people) > 100

    store = AuditStore(StoreUrl.parse(store_url))
    await store.start()
    try:
        for name in ("uio", "uib", "ntnu", "ucx"):
            await run_seeded(sandbox, name, sinks=store_only(store))
            # a failing run too: error messages are where values most easily leak
            await run_seeded(
                sandbox,
                name,
                sinks=store_only(store),
                dry_run=True,
                secret_changes={f"{name}-fs": {"username": "x", "password": "y"}},
            )
    finally:
        await store.close()
    assert store.written > 40

    text = await raw_dump(store_url)
    path = StoreUrl.parse(store_url).sqlite_path
    if path is not None:
        text += sqlite_files(path)
    assert "fs-inspera:" in text and "praktikportalen-wiseflow:" in text
    leaked = sorted(v for v in people if v in text)
    assert leaked == [], f"{len(leaked)} personal values in the database"
