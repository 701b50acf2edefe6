"""Benchmark: what the audit history store costs on the semester-start shape.

20 institutions x 500 assessments, every one new, 15 ms added to every request, against the
simulated FS and Inspera in a child process (bench/run.py's sandbox). The same first run three
times, Inspera emptied in between: without a store, with SQLite, with PostgreSQL (a throwaway
server started as the tests start theirs). Prints wall time, this process's CPU time (the run,
the store's writer and, for SQLite, its driver threads), the PostgreSQL server's CPU time, the
rows written and dropped, and the time the final flush took.

    .venv/bin/python bench/audit_store.py --institutions 20 --assessments 500 --latency 0.015
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

# the repository root, for the sandbox this one shares with bench.run and the tests' PostgreSQL server
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.run import SECRETS, Urls, child_sandbox, no_audit, spec_for, stats
from examsync.adapters.auditstore.store import AuditStore
from examsync.api.spec import InstitutionSpec, PipelineName
from examsync.audit import AuditRecord, Responsibles, Submodule
from examsync.credentials import ResolvedSecrets
from examsync.domain.outcomes import Action
from examsync.pipelines.runner import RunOptions, RunSink, SinkFactory, run_institution
from examsync.sinks import StoreSink
from examsync.state import InstitutionState
from examsync.store_url import StoreUrl
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


def store_only(store: AuditStore) -> SinkFactory:
    """Each run's sinks: the store's alone (the bench's Institutions name no Humio or Slack)."""

    def build(spec: InstitutionSpec, secrets: ResolvedSecrets, institution: str) -> list[RunSink]:
        return [StoreSink(store, institution)]

    return build


async def one_run(urls: Urls, n: int, url: str | None, server: PostgresServer | None) -> None:
    async with httpx.AsyncClient() as client:
        await client.post(f"{urls.admin}/reset")  # Inspera forgets the tests: every assessment is new again
    store = AuditStore(StoreUrl.parse(url)) if url else None
    if store is not None:
        await store.start()
        await store.migrate()  # schema made before the clock starts, as a long-running operator has it
    sinks = store_only(store) if store is not None else None
    before = await stats(urls)
    cpu, server_before = time.process_time(), server_cpu(server)
    started = time.perf_counter()
    results = await asyncio.gather(
        *(
            run_institution(
                f"i{i}",
                "bench",
                spec_for(urls, i),
                SECRETS,
                InstitutionState(),
                RunOptions(audit=no_audit, sinks=sinks),
            )
            for i in range(n)
        )
    )
    ran = time.perf_counter() - started
    flush = 0.0
    if store is not None:
        flushing = time.perf_counter()
        await store.close()
        flush = time.perf_counter() - flushing
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    after = await stats(urls)
    items = sum(sum(r.pipelines["fs-inspera"].actions.values()) for r, _ in results)
    failed = sum(r.pipelines["fs-inspera"].counts.failed for r, _ in results)
    label = StoreUrl.parse(url).backend.value if url else "no store"
    line = (
        f"  {label:<10} wall {wall:7.2f} s (runs {ran:6.2f} s, final flush {flush:5.2f} s)  "
        f"CPU {cpu:6.2f} s  items {items}  created {after['tests'] - before['tests']}  failed {failed}"
    )
    if store is not None:
        line += f"  rows written {store.written}  dropped {store.dropped}"
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


async def bench(args: argparse.Namespace) -> None:
    server = None if args.no_postgres else PostgresServer().start()
    workdir = Path(tempfile.mkdtemp(prefix="examsync-bench-"))
    try:
        with child_sandbox(args.institutions, args.assessments, args.latency) as urls:
            print(
                f"audit store cost, fs-inspera: {args.institutions} institutions x {args.assessments} "
                f"assessments, all new, {args.latency * 1000:.0f} ms latency per request",
                flush=True,
            )
            for round_ in range(args.rounds):
                await one_run(urls, args.institutions, None, None)
                await one_run(urls, args.institutions, f"sqlite:///{workdir / f'audit-{round_}.db'}", None)
                if server is not None:
                    await one_run(urls, args.institutions, server.create_database(), server)
        records = sample_records(args.institutions * args.assessments)
        print("the store alone (no run, no sandbox):", flush=True)
        await store_alone(f"sqlite:///{workdir / 'alone.db'}", records)
        if server is not None:
            await store_alone(server.create_database(), records)
    finally:
        if server is not None:
            server.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--institutions", type=int, default=20)
    parser.add_argument("--assessments", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.015, help="seconds added to every request")
    parser.add_argument("--rounds", type=int, default=1, help="times to run the three variants")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
