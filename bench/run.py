"""Benchmark: semester start, many Institutions publishing new assessments at once.

The simulated FS and Inspera run in a child process of their own, one FS host shared by every
Institution (as in production) and one Inspera host per Institution (uio.inspera.no,
uib.inspera.no, ...), each request delayed by `--latency`. The examsync side is the real
`examsync sync` command in its own process (JSON logs and one audit record per item to a file),
so its wall time, CPU time and peak RSS are its own. One invocation prints:

- the first run (every assessment new): wall and CPU time, assessments/s, upstream calls per
  assessment beside the floor computed from the data (per Institution one token and one list
  call, each distinct responsible once; per assessment FS detail, Inspera search and create),
  the lower bound the shared FS host sets (detail calls x latency / connections per host);
- the examsync process's peak RSS, and the simulators' CPU time (they must not be the bottleneck);
- a run with nothing changed (the same state file): FS calls per Institution, Inspera calls, writes;
- the naive sequential integration (one request at a time, no cache) on an Institution of its
  own with the same data, and the speed-up over it.

`--curve` runs the first run at 5,000, 10,000, 20,000 and 40,000 assessments (a fresh sandbox each)
and prints time per assessment and peak RSS. `--profile FILE` records the examsync process of the
first run with py-spy (`--py-spy PATH`; raw stacks, see bench/profile_top.py).

    .venv/bin/python bench/run.py --institutions 20 --assessments 500 --latency 0.015
    .venv/bin/python bench/run.py --curve
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing as mp
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psutil
import yaml
from aiohttp import web

from examsync import event_loop
from examsync_sandbox import fs_records
from examsync_sandbox.simulators import fs as fs_sim
from examsync_sandbox.simulators import inspera as inspera_sim
from examsync_sandbox.simulators.serving import Faults, SimServer

ROOT = Path(__file__).resolve().parents[1]
PEAK_RSS = ROOT / "scripts" / "peak_rss.py"
USERS_PER_INSTITUTION = 40
RESPONSIBLES_PER_ASSESSMENT = 2
NAMESPACE = "bench"
BASELINE = "baseline"  # the naive integration's own Institution (examsync never syncs it)
CURVE = (250, 500, 1000, 2000)  # assessments per Institution for --curve (x 20 Institutions)


def institution_number(i: int | str) -> str:
    return "9999" if i == BASELINE else str(1000 + int(i))


def responsibles(inst: str, n: int) -> list[str]:
    return [f"ansv{(n + k) % USERS_PER_INSTITUTION}@{inst}.no" for k in range(RESPONSIBLES_PER_ASSESSMENT)]


def record(inst: str, n: int, now: datetime) -> dict[str, Any]:
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC) + timedelta(hours=n % 200)
    return fs_records.assessment(
        inst,
        f"EMNE{n:05d}",
        f"Emne {n}",
        start,
        responsibles=[{"feideId": f, "navn": "Ansvarlig", "epost": "x@y.no"} for f in responsibles(inst, n)],
        candidates=[{"kandidatnummer": c, "feideId": f"s{c}@{inst}.no"} for c in range(3)],
        sensurfrist="2026-12-22",
        sistEndret=(now - timedelta(hours=1)).isoformat(),
        kommisjoner=[],
    )


def floor_calls(institutions: int, assessments: int) -> int:
    """The fewest upstream calls a first run can make on this data (contracts/fs.md, inspera.md):
    per Institution a token and a list call, and each distinct responsible looked up once on its
    own Inspera instance; per assessment the FS detail, the Inspera search and the create."""
    total = 0
    for i in range(institutions):
        inst = institution_number(i)
        distinct = {f for n in range(assessments) for f in responsibles(inst, n)}
        total += 2 + len(distinct) + 3 * assessments
    return total


def serve(conn: Connection, institutions: int, assessments: int, baseline: int, latency: float) -> None:
    """Child process: one FS, one Inspera per Institution (and one for the baseline), a stats endpoint."""

    async def main() -> None:
        now = datetime.now(UTC)
        fs_world = fs_sim.World()
        names: list[int | str] = [*range(institutions), BASELINE]
        worlds: dict[str, inspera_sim.World] = {}
        for i in names:
            inst = institution_number(i)
            for n in range(baseline if i == BASELINE else assessments):
                fs_world.add(record(inst, n, now))
            worlds[str(i)] = world = inspera_sim.World()
            for u in range(USERS_PER_INSTITUTION):
                world.add_user(f"ansv{u}@{inst}.no")
        fs_app = fs_sim.make_app(fs_world)
        detail_times: list[float] = []  # when each FS detail call arrived (how busy the shared host was)
        fs_peers: set[Any] = set()  # the client ends of the connections FS was called over

        @web.middleware
        async def timed(request: web.Request, handler: Any) -> web.StreamResponse:
            if request.transport is not None:
                fs_peers.add(request.transport.get_extra_info("peername"))
            if not request.path.startswith("/eksamen/liste"):
                detail_times.append(time.monotonic())
            response: web.StreamResponse = await handler(request)
            return response

        fs_app.middlewares.insert(0, timed)
        fs = SimServer(fs_app, Faults(latency=latency))
        inspera = {
            key: SimServer(inspera_sim.make_app(world), Faults(latency=latency)) for key, world in worlds.items()
        }
        await fs.start()
        for server in inspera.values():
            await server.start()

        async def stats(_: web.Request) -> web.Response:
            examsync = [s for key, s in inspera.items() if key != BASELINE]
            count = lambda servers, method, prefix: sum(s.count(method, prefix) for s in servers)  # noqa: E731
            token = count(examsync, "POST", "/authenticate/")
            users = count(examsync, "GET", "/v1/users/")
            search = count(examsync, "POST", "/v1/test/search")
            get_test = count(examsync, "GET", "/v1/test/")
            writes = [w for key, w in worlds.items() if key != BASELINE]
            fs_list = fs.count("GET", "/eksamen/liste")
            return web.json_response(
                {
                    "fs_list": fs_list,
                    "fs_detail": fs.calls["total"] - fs_list,
                    "token": token,
                    "users": users,
                    "search": search,
                    "get_test": get_test,
                    "inspera": sum(s.calls["total"] for s in examsync),
                    "created": sum(w.writes["create"] for w in writes),
                    "updated": sum(w.writes["update"] for w in writes),
                    "tests": sum(len(w.tests) for w in writes),
                    "baseline": inspera[BASELINE].calls["total"],
                    # FS detail calls since the last mark, and the seconds from the first to the last
                    "fs_marked": len(detail_times),
                    "fs_span_ms": round((detail_times[-1] - detail_times[0]) * 1000) if detail_times else 0,
                    "fs_connections": len(fs_peers),
                }
            )

        async def mark(_: web.Request) -> web.Response:
            detail_times.clear()
            fs_peers.clear()
            return web.json_response({})

        admin = web.Application()
        admin.router.add_get("/stats", stats)
        admin.router.add_post("/mark", mark)
        admin_server = SimServer(admin)
        await admin_server.start()
        conn.send({"fs": fs.url, "inspera": {key: s.url for key, s in inspera.items()}, "admin": admin_server.url})
        await asyncio.Event().wait()

    # the simulators on uvloop as well: on two cores, their CPU is time the examsync side waits for
    with event_loop.runner() as runner:
        runner.run(main())


@dataclass
class Sandbox:
    fs: str
    inspera: dict[str, str]
    admin: str
    pid: int
    process: psutil.Process = field(init=False)

    def __post_init__(self) -> None:
        self.process = psutil.Process(self.pid)

    def cpu(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def mark(self) -> None:
        httpx.post(f"{self.admin}/mark", timeout=60)

    def stats(self) -> dict[str, int]:
        data: dict[str, int] = httpx.get(f"{self.admin}/stats", timeout=60).json()
        return data


@contextlib.contextmanager
def sandbox(institutions: int, assessments: int, baseline: int, latency: float) -> Iterator[Sandbox]:
    parent, child = mp.Pipe()
    process = mp.get_context("spawn").Process(
        target=serve, args=(child, institutions, assessments, baseline, latency), daemon=True
    )
    process.start()
    try:
        assert process.pid is not None
        yield Sandbox(**parent.recv(), pid=process.pid)
    finally:
        process.terminate()
        process.join(5)


def write_manifests(sb: Sandbox, institutions: int, path: Path) -> None:
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "stringData": data,
        }
        for name, data in (
            ("fs", {"username": fs_sim.USERNAME, "password": fs_sim.PASSWORD}),
            ("inspera", {"apiKey": inspera_sim.API_KEY}),
        )
    ]
    for i in range(institutions):
        docs.append(
            {
                "apiVersion": "examsync.io/v1alpha1",
                "kind": "Institution",
                "metadata": {"name": f"i{i:03d}", "namespace": NAMESPACE},
                "spec": {
                    "shortName": f"I{i}",
                    "fs": {
                        "baseUrl": sb.fs,
                        "institutionNumber": institution_number(i),
                        "startYear": 2025,
                        "credentialsSecretRef": {"name": "fs"},
                    },
                    "inspera": {
                        "enabled": True,
                        "baseUrl": sb.inspera[str(i)],
                        "clientId": f"i{i}.inspera.no",
                        "credentialsSecretRef": {"name": "inspera"},
                    },
                },
            }
        )
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")


@dataclass
class SyncRun:
    wall: float
    cpu: float  # user + system seconds of the examsync process
    peak_rss_mib: float
    exit_code: int
    report: dict[str, Any]
    log_lines: int

    def total(self, key: str) -> int:
        return sum(
            counts.get(key, 0)
            for inst in self.report.get("institutions", [])
            for counts in inst.get("pipelines", {}).values()
        )

    def failure_reasons(self) -> Counter[str]:
        return Counter(
            f"{f.get('reason')}: {f.get('message', '')[:60]}"
            for inst in self.report.get("institutions", [])
            for f in inst.get("failures", [])
        )


def sync(
    manifest: Path,
    state: Path,
    per_host: int,
    workdir: Path,
    profile: Path | None = None,
    py_spy: str = "py-spy",
    rate: int = 100,
    extra: Sequence[str] = (),
) -> SyncRun:
    """One `examsync sync` process over the manifests (with `extra` arguments), its own peak RSS and
    CPU time measured."""
    command = [
        sys.executable,
        "-m",
        "examsync",
        "sync",
        "-f",
        str(manifest),
        "--allow-loopback",
        "--state",
        str(state),
        "-o",
        "json",
        *extra,
    ]
    if profile is not None:
        command = [py_spy, "record", "-r", str(rate), "-f", "raw", "-o", str(profile), "--", *command]
    peak_file, out_file, err_file = workdir / "peak", workdir / "out.json", workdir / "log.jsonl"
    env = {**os.environ, "EXAMSYNC_MAX_CONNECTIONS_PER_HOST": str(per_host)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with out_file.open("wb") as out, err_file.open("wb") as err:
        code = subprocess.call(
            [sys.executable, str(PEAK_RSS), str(peak_file), "--", *command], stdout=out, stderr=err, env=env
        )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    text = out_file.read_text(encoding="utf-8")
    try:  # py-spy, when it wraps the command, writes its own lines around the report
        report = json.loads(text[text.find('{\n  "institutions"') : text.rfind("}") + 1])
    except ValueError:
        tail = err_file.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise SystemExit(f"examsync sync exited {code} without a report:\n{tail}") from None
    with err_file.open("rb") as fh:
        lines = sum(1 for _ in fh)
    return SyncRun(wall, cpu, int(peak_file.read_text()) / 1024, code, report, lines)


def naive_run(sb: Sandbox, assessments: int) -> tuple[float, int, int]:
    """The integration as it was: one request at a time, no cache, each responsible looked up per
    assessment. Returns (seconds, assessments, requests)."""
    inspera = sb.inspera[BASELINE]
    inst = institution_number(BASELINE)
    calls = 0
    started = time.perf_counter()
    with httpx.Client(timeout=30) as client:
        basic = base64.b64encode(f"{fs_sim.USERNAME}:{fs_sim.PASSWORD}".encode()).decode()
        fs_headers = {"Authorization": f"Basic {basic}"}
        token = client.post(
            f"{inspera}/authenticate/token/",
            params={"grant_type": "authorization_code", "client_id": "baseline"},
            headers={"code": inspera_sim.API_KEY},
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        listing = client.get(
            f"{sb.fs}/eksamen/liste",
            headers=fs_headers,
            params={
                "institusjonsnr": inst,
                "datofra": "2025-01-01",
                "datotil": "2027-12-31",
                "eksamenssystem": "INSPERA",
                "sistEndret": "2000-01-01T00:00:00+00:00",
            },
        ).json()
        calls += 2
        for entry in listing["eksamener"]:
            detail = client.get(f"{sb.fs}/eksamen/INSPERA/{quote(entry['id'], safe='')}", headers=fs_headers).json()
            contributors = []
            for person in detail["eksamensansvarlige"]:
                r = client.get(f"{inspera}/v1/users/external/FEIDE/{quote(person['feideId'])}", headers=auth)
                if r.status_code == 200:
                    contributors.append({"userId": r.json()["userId"], "role": "MAIN_RESPONSIBLE"})
            body = {
                "externalTestId": detail["id"],
                "title": detail["emnetittel"],
                "externalTest": True,
                "externalSystem": "FS",
                "contributors": contributors,
                "startTime": detail["start"],
                "duration": detail["varighetMinutter"],
            }
            hits = client.post(
                f"{inspera}/v1/test/search", headers=auth, json={"query": {"filters": {"externalId": detail["id"]}}}
            ).json()
            calls += 2 + len(detail["eksamensansvarlige"])
            if hits["results"]:
                test_id = hits["results"][0]["assessmentRunId"]
                client.get(f"{inspera}/v1/test/{test_id}", headers=auth)
                client.post(f"{inspera}/v1/test/{test_id}", headers=auth, json=body)
                calls += 2
            else:
                client.post(f"{inspera}/v1/test", headers=auth, json=body)
                calls += 1
    return time.perf_counter() - started, len(listing["eksamener"]), calls


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{psutil.cpu_count()} cores ({model}), Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )


@dataclass
class FirstRun:
    assessments: int
    run: SyncRun
    sim_cpu: float
    calls: int
    floor: int
    stats: dict[str, int]
    fs_span: float  # seconds from the first FS detail call to the last
    fs_connections: int  # connections FS was called over


def first_run(
    sb: Sandbox, institutions: int, assessments: int, per_host: int, workdir: Path, args: argparse.Namespace
) -> tuple[FirstRun, Path, Path]:
    manifest, state = workdir / "institutions.yaml", workdir / "state.json"
    write_manifests(sb, institutions, manifest)
    sb.mark()
    before, sim_before = sb.stats(), sb.cpu()
    run = sync(manifest, state, per_host, workdir, args.profile, args.py_spy, args.profile_rate)
    sim_cpu = sb.cpu() - sim_before
    after = sb.stats()
    calls = sum(after[k] - before[k] for k in ("fs_list", "fs_detail", "inspera"))
    total = institutions * assessments
    return (
        FirstRun(
            total,
            run,
            sim_cpu,
            calls,
            floor_calls(institutions, assessments),
            {k: after[k] - before[k] for k in after},
            after["fs_span_ms"] / 1000,
            after["fs_connections"],
        ),
        manifest,
        state,
    )


def print_first(first: FirstRun, latency: float, per_host: int) -> None:
    run, total, s = first.run, first.assessments, first.stats
    bound = s["fs_detail"] * latency / per_host
    print(
        f"  first run (all new):   {run.wall:7.2f} s wall  {run.cpu:6.2f} s CPU  "
        f"{total / run.wall:7.1f} assessments/s  {run.wall / total * 1000:.2f} ms per assessment  "
        f"exit {run.exit_code}"
    )
    print(
        f"    created {run.total('created')}  failed {run.total('failed')}  tests in Inspera {s['tests']}  "
        f"log lines {run.log_lines}"
    )
    for reason, n in run.failure_reasons().most_common(5):
        print(f"    failure x{n}: {reason}")
    print(
        f"    upstream calls per assessment {first.calls / total:.3f} (floor from the data "
        f"{first.floor / total:.3f}): FS list {s['fs_list']}, FS detail {s['fs_detail']}, Inspera token "
        f"{s['token']}, user look-ups {s['users']}, search {s['search']}, get {s['get_test']}, "
        f"create {s['created']}, update {s['updated']}"
    )
    print(
        f"    FS-host bound ({s['fs_detail']} detail calls x {latency * 1000:.0f} ms / {per_host} connections): "
        f"{bound:.1f} s; wall / bound = {run.wall / bound:.2f}"
        if bound
        else "    no FS detail calls"
    )
    if first.fs_span:
        print(
            f"    FS detail calls arrived over {first.fs_span:.1f} s ({s['fs_detail'] / first.fs_span:.0f}/s; "
            f"the host's cap allows {per_host / latency:.0f}/s) on {first.fs_connections} connections"
            if latency
            else ""
        )
    print(
        f"    peak RSS of examsync sync: {run.peak_rss_mib:.0f} MiB   simulators' CPU: {first.sim_cpu:.1f} s "
        f"({first.sim_cpu / run.wall * 100:.0f}% of one core)"
    )


def bench(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    print(
        f"examsync fs-inspera: {args.institutions} Institutions x {args.assessments} new assessments, "
        f"{args.latency * 1000:.0f} ms added to every request, {args.per_host} connections per host; "
        "one FS host, one Inspera host per Institution"
    )
    with (
        sandbox(args.institutions, args.assessments, args.baseline, args.latency) as sb,
        tempfile.TemporaryDirectory(prefix="examsync-bench-") as tmp,
    ):
        workdir = Path(tmp)
        naive = None
        if args.baseline:
            naive = naive_run(sb, args.baseline)
        first, manifest, state = first_run(sb, args.institutions, args.assessments, args.per_host, workdir, args)
        print_first(first, args.latency, args.per_host)

        before = sb.stats()
        idle = sync(manifest, state, args.per_host, workdir)
        after = sb.stats()
        writes = (after["created"] - before["created"]) + (after["updated"] - before["updated"])
        fs_calls = after["fs_list"] + after["fs_detail"] - before["fs_list"] - before["fs_detail"]
        print(
            f"  nothing changed:       {idle.wall:7.2f} s wall  {idle.cpu:6.2f} s CPU  FS calls per Institution "
            f"{fs_calls / args.institutions:.1f}"
            f"  Inspera calls {after['inspera'] - before['inspera']}  writes {writes}  exit {idle.exit_code}"
        )

        if naive is not None:
            seconds, items, calls = naive
            rate = items / seconds
            total = first.assessments
            print(
                f"  naive baseline ({items} assessments, sequential): {seconds:7.2f} s  {rate:6.1f} assessments/s  "
                f"{calls / items:.2f} calls per assessment  ({total / rate:.0f} s for {total})"
            )
            print(f"  speed-up over the naive baseline: {(total / first.run.wall) / rate:.1f}x")


def curve(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    print(
        f"cost curve: {args.institutions} Institutions, {args.latency * 1000:.0f} ms per request, "
        f"{args.per_host} connections per host; first run (all new), a fresh sandbox each"
    )
    print(
        f"  {'assessments':>11} {'wall s':>7} {'ms/assessment':>13} {'CPU s':>6} {'CPU ms/assessment':>17} "
        f"{'peak RSS MiB':>12} {'calls/assessment':>16} {'floor':>6} {'failed':>6} {'sim CPU s':>9}"
    )
    for per_institution in args.curve_points:
        with (
            sandbox(args.institutions, per_institution, 0, args.latency) as sb,
            tempfile.TemporaryDirectory(prefix="examsync-bench-") as tmp,
        ):
            first, _, _ = first_run(sb, args.institutions, per_institution, args.per_host, Path(tmp), args)
        run, total = first.run, first.assessments
        print(
            f"  {total:>11} {run.wall:>7.1f} {run.wall / total * 1000:>13.2f} {run.cpu:>6.1f} "
            f"{run.cpu / total * 1000:>17.2f} {run.peak_rss_mib:>12.0f} {first.calls / total:>16.3f} "
            f"{first.floor / total:>6.3f} {run.total('failed'):>6} {first.sim_cpu:>9.1f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--institutions", type=int, default=20)
    parser.add_argument("--assessments", type=int, default=500, help="new assessments per Institution")
    parser.add_argument("--latency", type=float, default=0.015, help="seconds added to every request")
    parser.add_argument("--per-host", type=int, default=8, help="connections per upstream host")
    parser.add_argument("--baseline", type=int, default=500, help="assessments the naive baseline handles (0: skip it)")
    parser.add_argument("--curve", action="store_true", help="the cost curve from 5,000 to 40,000 assessments")
    parser.add_argument(
        "--curve-points", type=int, nargs="+", default=list(CURVE), help="assessments per Institution for --curve"
    )
    parser.add_argument("--profile", type=Path, help="record the first run's examsync process with py-spy")
    parser.add_argument("--py-spy", default="py-spy", help="the py-spy executable")
    parser.add_argument("--profile-rate", type=int, default=100, help="py-spy samples per second")
    args = parser.parse_args()
    if args.curve:
        curve(args)
    else:
        bench(args)


if __name__ == "__main__":
    main()
