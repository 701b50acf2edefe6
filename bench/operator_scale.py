"""Benchmark: one `examsync run` process serving many Institutions against the Kubernetes emulator.

This process hosts the emulator (the test suite's kmock subclass) and the sandbox; the operator
is a separate `examsync run --standalone -A` process, logged in through a kubeconfig, so psutil
measures the operator alone. Every Institution is a copy of the seeded UiB one (Inspera through
the Gravitee gateway, so no Institution waits on another's token request) with its own name,
namespace, Secrets and FS institution number holding a few assessments.

It prints the time until every Institution reported Ready, the operator's RSS and CPU time
after the first runs settled, its CPU seconds per minute while idle, and how the first runs and
the scheduled `nextRunTime` values spread over time.

    .venv/bin/python bench/operator_scale.py --institutions 200
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import itertools
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psutil

# the repository root, for the test suite's harness (tests.support.kube_harness)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kmock._internal import rendering

from examsync_sandbox import seed_no
from examsync_sandbox.server import Sandbox
from tests.support.kube_harness import INSTITUTIONS, Cluster, Emulator, OperatorProcess, parse_metrics, serve

FIRST_INSTITUTION_NUMBER = 5000
# seeded UiO assessments every Institution gets a copy of (all of them created on a first run)
TEMPLATES = ("uio-new", "uio-new-0", "uio-new-1", "uio-new-2", "uio-new-3", "uio-new-4", "uio-brackets")


class TimedEmulator(Emulator):
    """The emulator noting when each Institution's status first said a run started and Ready."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.run_started: dict[tuple[str, str], float] = {}
        self.ready: dict[tuple[str, str], float] = {}

    async def _serve(self, request: rendering.Request) -> Any:
        response = await super()._serve(request)
        if request.resource == INSTITUTIONS and request.subresource == "status" and request.name:
            key = (str(request.namespace), str(request.name))
            try:
                status = self.objects[INSTITUTIONS, request.namespace, request.name].raw.get("status") or {}
            except KeyError:
                return response
            now = time.monotonic()
            for cond in status.get("conditions") or []:
                if cond.get("type") == "Reconciling" and cond.get("status") == "True":
                    self.run_started.setdefault(key, now)
                if cond.get("type") == "Ready" and cond.get("status") == "True":
                    self.ready.setdefault(key, now)
        return response


def seed_fs(sandbox: Sandbox, institutions: int, assessments: int) -> None:
    """`assessments` copies of seeded UiO assessments under each bench institution number."""
    fs = sandbox.world("fs")
    templates = [fs.records[seed_no.CASES[name]] for name in TEMPLATES]
    changed = datetime.now(UTC) - timedelta(hours=1)
    for i in range(institutions):
        nr = str(FIRST_INSTITUTION_NUMBER + i)
        for j in range(assessments):
            record = copy.deepcopy(templates[j % len(templates)])
            record.pop("id")
            record.update(institusjonsnr=nr, stedkode=f"{nr}_15_10_0", versjonskode=str(1 + j // len(templates)))
            fs.add(record, changed=changed)


def manifests(sandbox: Sandbox, institutions: int, namespaces: int, interval: str) -> list[dict[str, Any]]:
    seeded = sandbox.manifests()
    template = next(m for m in seeded if m["kind"] == "Institution" and m["metadata"]["name"] == seed_no.UIB)
    secrets = [m for m in seeded if m["kind"] == "Secret" and m["metadata"]["name"].startswith("uib-")]
    out: list[dict[str, Any]] = []
    for n in range(namespaces):
        for secret in secrets:
            copied = copy.deepcopy(secret)
            copied["metadata"]["namespace"] = f"tenant-{n:02d}"
            out.append(copied)
    for i in range(institutions):
        inst = copy.deepcopy(template)
        inst["metadata"] = {"name": f"inst-{i:03d}", "namespace": f"tenant-{i % namespaces:02d}"}
        spec = inst["spec"]
        spec.update(shortName=f"I{i:03d}", interval=interval)
        spec["fs"].update(institutionNumber=str(FIRST_INSTITUTION_NUMBER + i), placeCodes=[])
        out.append(inst)
    return out


async def apply(cluster: Cluster, manifest: dict[str, Any]) -> None:
    ns = manifest["metadata"]["namespace"]
    plural = (
        "api/v1/namespaces/{ns}/secrets"
        if manifest["kind"] == "Secret"
        else ("apis/examsync.io/v1alpha1/namespaces/{ns}/institutions")
    )
    await cluster.request("POST", "/" + plural.format(ns=ns), manifest, "application/json")


def status_time(value: Any) -> datetime | None:
    """A time as the status holds it (RFC 3339), or None when the status has none."""
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def spread(label: str, values: Sequence[float], unit: str) -> str:
    """min/median/max of the gaps between consecutive values (sorted)."""
    ordered = sorted(values)
    gaps = [b - a for a, b in itertools.pairwise(ordered)]
    if not gaps:
        return f"  {label}: {len(ordered)} value(s)"
    return (
        f"  {label}: span {ordered[-1] - ordered[0]:.1f} {unit}; gap between consecutive "
        f"min {min(gaps):.3f} / median {statistics.median(gaps):.3f} / max {max(gaps):.3f} {unit}"
    )


def histogram(values: Sequence[float], bucket: float, unit: str, width: int = 50) -> list[str]:
    """Text histogram of ``values`` (offsets from the first) in buckets of ``bucket``."""
    if not values:
        return []
    first = min(values)
    counts = Counter(int((v - first) // bucket) for v in values)
    top = max(counts.values())
    lines = []
    for b in range(max(counts) + 1):
        n = counts.get(b, 0)
        bar = "#" * max(1 if n else 0, round(n / top * width))
        lines.append(f"    +{b * bucket:>4g}{unit} {n:>4} {bar}")
    return lines


async def wait_until(predicate: Any, timeout: float, proc: OperatorProcess, what: str) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                if not proc.running():
                    raise SystemExit(f"the operator exited while waiting for {what}:\n{proc.log_tail()}")
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}:\n{proc.log_tail()}") from None


async def bench(args: argparse.Namespace) -> None:
    async with Sandbox() as sandbox, serve(TimedEmulator()) as cluster:
        emulator = cluster.emulator
        seed_fs(sandbox, args.institutions, args.assessments)
        docs = manifests(sandbox, args.institutions, args.namespaces, args.interval)
        for doc in docs:
            await apply(cluster, doc)
        keys = [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs if d["kind"] == "Institution"]
        me = psutil.Process()
        bench_cpu0 = cpu_seconds(me)

        with tempfile.TemporaryDirectory(prefix="examsync-scale-") as workdir:
            t0 = time.monotonic()
            async with OperatorProcess(cluster.url, Path(workdir)) as op:
                proc = psutil.Process(op.pid)
                await wait_until(lambda: len(emulator.ready) >= len(keys), args.timeout, op, "every Institution Ready")
                all_ready = time.monotonic() - t0
                cpu_first_runs = cpu_seconds(proc)
                rss_peak_runs = proc.memory_info().rss
                await asyncio.sleep(args.settle)
                rss_idle = proc.memory_info().rss
                cpu_idle0 = cpu_seconds(proc)
                idle0 = time.monotonic()
                await asyncio.sleep(args.idle)
                cpu_idle = cpu_seconds(proc) - cpu_idle0
                idle_for = time.monotonic() - idle0
                rss_idle_end = proc.memory_info().rss
                threads = proc.num_threads()
                fds = proc.num_fds()
                sockets = len(proc.net_connections(kind="tcp"))
                log_tail = op.log_tail()
                exit_code = await op.stop()
            restart = await restarted(cluster, sandbox, Path(workdir), keys, args.timeout)
        bench_cpu = cpu_seconds(me) - bench_cpu0

        statuses = [emulator.status(name, ns) for ns, name in keys]
        ready_true = sum(
            1 for s in statuses for c in s.get("conditions") or [] if c["type"] == "Ready" and c["status"] == "True"
        )
        created = sum(s["pipelines"]["fs-inspera"]["created"] for s in statuses)
        failed = sum(s["pipelines"]["fs-inspera"]["failed"] for s in statuses)
        runs = sum(len(s.get("history") or []) for s in statuses)
        starts = [emulator.run_started[k] - t0 for k in keys if k in emulator.run_started]
        readies = [emulator.ready[k] - t0 for k in keys]
        due = [status_time(s.get("nextRunTime")) for s in statuses]
        last = [status_time(s.get("lastRunTime")) for s in statuses]
        due_ts = [d.timestamp() for d in due if d is not None]
        offsets = [(d - r).total_seconds() for d, r in zip(due, last, strict=True) if d and r]

        print(
            f"examsync operator scale: {len(keys)} Institutions in {args.namespaces} namespaces, "
            f"{args.assessments} assessments each, interval {args.interval}; one `examsync run` process"
        )
        print(
            f"  all Ready after {all_ready:.1f} s from process start "
            f"(first run started at {min(starts):.1f} s, last Ready at {max(readies):.1f} s)"
        )
        print(
            f"  runs: {runs}  Ready True: {ready_true}/{len(keys)}  tests created: {created}  failed items: {failed}"
            f"  Inspera tests in the sandbox: {len(sandbox.world('inspera').tests)}"
        )
        print(
            f"  operator CPU until all Ready: {cpu_first_runs:.1f} s (start-up included); RSS then {mib(rss_peak_runs)}"
        )
        print(
            f"  operator idle ({args.settle:.0f} s after the first runs): RSS {mib(rss_idle)} "
            f"-> {mib(rss_idle_end)} after {idle_for:.0f} s, {threads} threads, {fds} open files, "
            f"{sockets} TCP sockets"
        )
        print(
            f"  operator CPU while idle: {cpu_idle:.2f} s in {idle_for:.0f} s = "
            f"{cpu_idle / idle_for * 60:.2f} CPU s per minute"
        )
        print(f"  this process (emulator + sandbox) used {bench_cpu:.1f} CPU s; operator exit status {exit_code}")
        print("first runs (start, seconds after the operator process started):")
        print(spread("start times", starts, "s"))
        print(spread("Ready times", readies, "s"))
        print("    run starts by second after the first:")
        print("\n".join(histogram(starts, 1.0, "s")))
        print("scheduled next runs (status.nextRunTime):")
        if offsets:
            figures = (min(offsets), statistics.median(offsets), max(offsets))
            low, mid, high = (timedelta(seconds=round(x)) for x in figures)
            print(f"  nextRunTime - lastRunTime: min {low} / median {mid} / max {high}")
        print(spread("nextRunTime", [t / 60 for t in due_ts], "min"))
        print("    next runs by minute after the earliest:")
        print("\n".join(histogram([t / 60 for t in due_ts], 1.0, "m")))
        print(
            f"after a restart: every Institution's series on /metrics {restart[0]:.1f} s after the process "
            f"started; upstream calls meanwhile: {restart[1]}"
        )
        if exit_code != 0:
            print(f"operator log tail:\n{log_tail}")


async def restarted(
    cluster: Cluster, sandbox: Sandbox, workdir: Path, keys: Sequence[tuple[str, str]], timeout: float
) -> tuple[float, int]:
    """A second operator process: seconds from its start until /metrics shows each Institution's
    conditions (restored from status, no run being due), and the upstream calls made meanwhile."""
    wanted = {f"{ns}/{name}" for ns, name in keys}
    calls0 = sum(sum(s.calls.values()) for s in sandbox.servers.values())
    second = workdir / "restart"
    second.mkdir()
    t0 = time.monotonic()
    async with OperatorProcess(cluster.url, second) as op:
        seen: set[str] = set()
        async with asyncio.timeout(timeout):
            while not wanted <= seen:
                if not op.running():
                    raise SystemExit(f"the restarted operator exited:\n{op.log_tail()}")
                try:
                    async with cluster.http.get(op.metrics_url) as resp:
                        text = await resp.text()
                except aiohttp.ClientConnectionError:
                    text = ""
                seen = {
                    s.labels["institution"] for s in parse_metrics(text) if s.name == "examsync_institution_condition"
                }
                if not wanted <= seen:
                    await asyncio.sleep(0.1)
        elapsed = time.monotonic() - t0
    return elapsed, sum(sum(s.calls.values()) for s in sandbox.servers.values()) - calls0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--institutions", type=int, default=200)
    parser.add_argument("--namespaces", type=int, default=20, help="Institutions are spread over this many")
    parser.add_argument("--assessments", type=int, default=3, help="FS assessments per Institution")
    parser.add_argument("--interval", default="6h", help="spec.interval of every Institution")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for every Institution Ready")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the first runs before measuring")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle CPU measurement")
    args = parser.parse_args()
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
