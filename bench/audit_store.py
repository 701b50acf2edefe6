"""Benchmark: what the audit history store costs on the semester-start shape.

20 Institutions x 500 assessments, every one new, 15 ms added to every request, against bench/run.py's
sandbox (the simulated FS and Inspera in a child process, one Inspera host per Institution). The
same first run of the real `examsync sync` three times, each on a fresh sandbox: without a store,
with SQLite (`--audit-db sqlite:///...`), with PostgreSQL (a throwaway server started as the tests
start theirs). Prints the examsync process's wall and CPU time, the rows the store holds afterwards,
and the PostgreSQL server's CPU time; then the store by itself writing the same number of records.

    .venv/bin/python bench/audit_store.py --institutions 20 --assessments 500 --latency 0.015
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import psycopg

# the repository root, for the sandbox this one shares with bench.run and the tests' PostgreSQL server
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.run import machine, sandbox, sync, write_manifests
from examsync.adapters.auditstore.store import AuditStore
from examsync.api.spec import PipelineName
from examsync.audit import AuditRecord, Responsibles, Submodule
from examsync.domain.outcomes import Action
from examsync.sinks import StoreSink
from examsync.store_url import Backend, StoreUrl
from tests.support.pg_server import PostgresServer


def server_cpu(server: PostgresServer | None) -> float:
    """CPU seconds of the PostgreSQL server so far: the postmaster, the backends it has reaped and
    those still running."""
    if server is None:
        return 0.0
    for proc in psutil.process_iter(["cmdline"]):
        if str(server.data) in " ".join(proc.info["cmdline"] or []):  # the postmaster: postgres -D DATA
            try:
                own = proc.cpu_times()
                live = sum(c.cpu_times().user + c.cpu_times().system for c in proc.children(recursive=True))
            except psutil.Error:
                continue
            return own.user + own.system + own.children_user + own.children_system + live
    return 0.0


def stored_rows(url: str) -> int:
    """Rows in the store's table, as an operator's SQL client would count them."""
    store_url = StoreUrl.parse(url)
    if store_url.backend is Backend.SQLITE:
        with sqlite3.connect(store_url.url.database or "") as conn:
            return int(conn.execute("SELECT count(*) FROM audit_records").fetchone()[0])
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM audit_records").fetchone()
        return int(row[0]) if row else 0


def one_run(args: argparse.Namespace, workdir: Path, url: str | None, server: PostgresServer | None) -> None:
    """The first run of `examsync sync` on a fresh sandbox (every assessment new), with or without a store."""
    with sandbox(args.institutions, args.assessments, 0, args.latency) as sb:
        manifest, state = workdir / "institutions.yaml", workdir / "state.json"
        state.unlink(missing_ok=True)
        write_manifests(sb, args.institutions, manifest)
        before, server_before = sb.stats(), server_cpu(server)
        run = sync(manifest, state, args.per_host, workdir, extra=("--audit-db", url) if url else ())
        after = sb.stats()
    label = StoreUrl.parse(url).backend.value if url else "no store"
    line = (
        f"  {label:<10} wall {run.wall:7.2f} s  CPU {run.cpu:6.2f} s  peak RSS {run.peak_rss_mib:4.0f} MiB  "
        f"created {after['created'] - before['created']}  failed {run.total('failed')}  exit {run.exit_code}"
    )
    if url is not None:
        line += f"  rows in the store {stored_rows(url)}"
    if server is not None:
        line += f"  server CPU {server_cpu(server) - server_before:5.2f} s"
    print(line, flush=True)


async def store_alone(url: str, records: list[AuditRecord]) -> None:
    """The store by itself: the same records handed to it as fast as the loop goes, then flushed."""
    store = AuditStore(StoreUrl.parse(url))
    await store.start()
    await store.migrate()
    sink = StoreSink(store, "bench/i0")
    cpu, started = time.process_time(), time.perf_counter()
    for n, record in enumerate(records):
        sink.record(record)
        if n % 100 == 0:
            await asyncio.sleep(0)
    await store.close()
    print(
        f"  {store.url.backend.value:<10} {len(records)} records written in {time.perf_counter() - started:5.2f} s, "
        f"CPU {time.process_time() - cpu:5.2f} s  (written {store.written}, dropped {store.dropped})",
        flush=True,
    )


def sample_records(n: int) -> list[AuditRecord]:
    when = datetime(2026, 12, 1, 9, tzinfo=UTC)
    return [
        AuditRecord(
            module_id=PipelineName.FS_INSPERA,
            submodule=Submodule.APPLY,
            vurd_id=f"{i:044d}",
            decoded_vurd_id=f"1000||EMNE{i:05d}",
            key=f"fs-inspera:{i:044d}",
            error_message=None,
            fs_id="1000",
            org_id="I0",
            hovedansvarlige=Responsibles(2, 2),
            inspera_instance="i0.inspera.no",
            success=True,
            action=Action.CREATED,
            reason=None,
            title=f"Emne {i}",
            run_id="bench",
            timestamp=when,
            dry_run=False,
            test_id=str(10_000 + i),
        )
        for i in range(n)
    ]


def bench(args: argparse.Namespace) -> None:
    server = None if args.no_postgres else PostgresServer().start()
    workdir = Path(tempfile.mkdtemp(prefix="examsync-bench-"))
    try:
        print(f"machine: {machine()}")
        print(
            f"audit store cost, fs-inspera: {args.institutions} Institutions x {args.assessments} "
            f"assessments, all new, {args.latency * 1000:.0f} ms added to every request",
            flush=True,
        )
        for round_ in range(args.rounds):
            one_run(args, workdir, None, None)
            one_run(args, workdir, f"sqlite:///{workdir / f'audit-{round_}.db'}", None)
            if server is not None:
                one_run(args, workdir, server.create_database(), server)
        records = sample_records(args.institutions * args.assessments)
        print("the store alone (no run, no sandbox):", flush=True)
        asyncio.run(store_alone(f"sqlite:///{workdir / 'alone.db'}", records))
        if server is not None:
            asyncio.run(store_alone(server.create_database(), records))
    finally:
        if server is not None:
            server.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--institutions", type=int, default=20)
    parser.add_argument("--assessments", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.015, help="seconds added to every request")
    parser.add_argument("--rounds", type=int, default=1, help="times to run the three variants")
    parser.add_argument("--per-host", type=int, default=8, help="connections per upstream host")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    bench(parser.parse_args())


if __name__ == "__main__":
    main()
