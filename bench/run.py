"""Benchmark: the fs-inspera pipeline against the sandbox with added latency.

The simulated FS and Inspera run in a child process (so the figures are the operator side's own);
this process drives `run_institution` for many Institutions at once, the way the operator does.
It prints wall time, assessments/s, upstream calls per assessment, peak RSS, the cost of a run
with nothing changed, and a naive sequential baseline (one request at a time, no caching, always
update) on the same data.

    .venv/bin/python bench/run.py --institutions 20 --assessments 500 --latency 0.015
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import multiprocessing as mp
import resource
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import quote

import httpx
from aiohttp import web

from examsync import hosts
from examsync.api.spec import InstitutionSpec
from examsync.credentials import StaticSecrets
from examsync.domain.fs import encode_id
from examsync.pipelines.runner import RunOptions, run_institution
from examsync.state import InstitutionState
from examsync_sandbox.simulators import fs as fs_sim
from examsync_sandbox.simulators import inspera as inspera_sim
from examsync_sandbox.simulators.serving import Faults, SimServer

USERS_PER_INSTITUTION = 40


def institution_number(i: int) -> str:
    return str(1000 + i)


def record(inst: str, n: int, now: datetime) -> dict[str, Any]:
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC) + timedelta(hours=n % 200)
    code = f"EMNE{n:05d}"
    return {
        "id": encode_id(inst, code, versjonskode="1", vurdkombkode="SKR", arstall=2026, vurdtidkode="HØST"),
        "institusjonsnr": inst,
        "emnekode": code,
        "versjonskode": "1",
        "vurdkombkode": "SKR",
        "arstall": 2026,
        "vurdtidkode": "HØST",
        "vurdtidkodeReell": "HØST",
        "emnetittel": f"Emne {n}",
        "vurderingsform": "SKRIFTLIG",
        "eksamenssystem": "INSPERA",
        "sensursystem": "INSPERA",
        "begrunnelsessystem": None,
        "stedkode": f"{inst}_15_10_0",
        "start": start.astimezone().isoformat(),
        "slutt": (start + timedelta(hours=4)).isoformat(),
        "varighetMinutter": 240,
        "sensurfrist": "2026-12-22",
        "sistEndret": (now - timedelta(hours=1)).isoformat(),
        "eksamensansvarlige": [
            {"feideId": f"ansv{(n + k) % USERS_PER_INSTITUTION}@{inst}.no", "navn": "Ansvarlig", "epost": "x@y.no"}
            for k in range(2)
        ],
        "kandidater": [{"kandidatnummer": c, "feideId": f"s{c}@{inst}.no"} for c in range(3)],
        "kommisjoner": [],
    }


def serve(conn: Connection, institutions: int, assessments: int, latency: float) -> None:
    """Child process: FS and Inspera simulators plus a small stats endpoint."""

    async def main() -> None:
        now = datetime.now(UTC)
        fs_world, inspera_world = fs_sim.World(), inspera_sim.World()
        for i in range(institutions):
            inst = institution_number(i)
            for n in range(assessments):
                fs_world.add(record(inst, n, now))
            for u in range(USERS_PER_INSTITUTION):
                inspera_world.add_user(f"ansv{u}@{inst}.no")
        servers = {
            "fs": SimServer(fs_sim.make_app(fs_world), Faults(latency=latency)),
            "inspera": SimServer(inspera_sim.make_app(inspera_world), Faults(latency=latency)),
        }
        for server in servers.values():
            await server.start()

        async def stats(_: web.Request) -> web.Response:
            return web.json_response(
                {
                    **{name: s.calls["total"] for name, s in servers.items()},
                    "writes": sum(inspera_world.writes.values()),
                    "tests": len(inspera_world.tests),
                }
            )

        async def reset(_: web.Request) -> web.Response:
            inspera_world.tests.clear()
            return web.json_response({})

        admin = web.Application()
        admin.router.add_get("/stats", stats)
        admin.router.add_post("/reset", reset)
        admin_server = SimServer(admin)
        await admin_server.start()
        conn.send({"fs": servers["fs"].url, "inspera": servers["inspera"].url, "admin": admin_server.url})
        await asyncio.Event().wait()

    asyncio.run(main())


@dataclass
class Urls:
    fs: str
    inspera: str
    admin: str


def spec_for(urls: Urls, i: int) -> InstitutionSpec:
    return InstitutionSpec.model_validate(
        {
            "shortName": f"I{i}",
            "fs": {
                "baseUrl": urls.fs,
                "institutionNumber": institution_number(i),
                "startYear": 2025,
                "credentialsSecretRef": {"name": "fs"},
            },
            "inspera": {
                "enabled": True,
                "baseUrl": urls.inspera,
                "clientId": f"i{i}.inspera.no",
                "credentialsSecretRef": {"name": "inspera"},
            },
        }
    )


SECRETS = StaticSecrets(
    {
        "fs": {"username": fs_sim.USERNAME, "password": fs_sim.PASSWORD},
        "inspera": {"apiKey": inspera_sim.API_KEY},
    }
)


async def stats(urls: Urls) -> dict[str, int]:
    async with httpx.AsyncClient() as client:
        data: dict[str, int] = (await client.get(f"{urls.admin}/stats")).json()
        return data


def no_audit(record: dict[str, Any]) -> None:
    """Audit records are not what is measured; logging 10,000 of them would be."""


@contextlib.contextmanager
def child_sandbox(institutions: int, assessments: int, latency: float) -> Iterator[Urls]:
    """FS and Inspera simulators in a child process, so the figures are the operator side's own."""
    parent, child = mp.Pipe()
    process = mp.get_context("spawn").Process(
        target=serve, args=(child, institutions, assessments, latency), daemon=True
    )
    process.start()
    # the simulators are on loopback, which this process may call only when told so
    hosts.configure(hosts.HostAllowlist.parse((), allow_loopback=True))
    try:
        yield Urls(**parent.recv())
    finally:
        process.terminate()
        process.join(5)


async def pipeline_run(urls: Urls, n: int, states: list[InstitutionState]) -> tuple[float, int, list[InstitutionState]]:
    started = time.perf_counter()
    results = await asyncio.gather(
        *(
            run_institution(f"i{i}", "bench", spec_for(urls, i), SECRETS, states[i], RunOptions(audit=no_audit))
            for i in range(n)
        )
    )
    elapsed = time.perf_counter() - started
    failed = sum(r.pipelines["fs-inspera"].counts["failed"] for r, _ in results)
    reasons = Counter(f.message.split(":")[0] + ": " + f.reason for r, _ in results for f in r.failures())
    if reasons:
        print(f"  failures: {dict(reasons)}")
    return elapsed, failed, [s for _, s in results]


async def naive_run(urls: Urls, institutions: int) -> tuple[float, int]:
    """The integration as it was: one request at a time, no caching, always update."""
    items = 0
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=30) as client:
        basic = base64.b64encode(f"{fs_sim.USERNAME}:{fs_sim.PASSWORD}".encode()).decode()
        fs_headers = {"Authorization": f"Basic {basic}"}
        for i in range(institutions):
            token = (
                await client.post(
                    f"{urls.inspera}/authenticate/token/",
                    params={"grant_type": "authorization_code", "client_id": f"i{i}"},
                    headers={"code": inspera_sim.API_KEY},
                )
            ).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            listing = (
                await client.get(
                    f"{urls.fs}/eksamen/liste",
                    headers=fs_headers,
                    params={
                        "institusjonsnr": institution_number(i),
                        "datofra": "2025-01-01",
                        "datotil": "2027-12-31",
                        "eksamenssystem": "INSPERA",
                        "sistEndret": "2000-01-01T00:00:00+00:00",
                    },
                )
            ).json()
            for entry in listing["eksamener"]:
                items += 1
                detail = (
                    await client.get(f"{urls.fs}/eksamen/INSPERA/{quote(entry['id'], safe='')}", headers=fs_headers)
                ).json()
                contributors = []
                for person in detail["eksamensansvarlige"]:
                    r = await client.get(
                        f"{urls.inspera}/v1/users/external/FEIDE/{quote(person['feideId'])}", headers=auth
                    )
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
                hits = (
                    await client.post(
                        f"{urls.inspera}/v1/test/search",
                        headers=auth,
                        json={"query": {"filters": {"externalId": detail["id"]}}},
                    )
                ).json()
                if hits["results"]:
                    test_id = hits["results"][0]["assessmentRunId"]
                    await client.get(f"{urls.inspera}/v1/test/{test_id}", headers=auth)
                    await client.post(f"{urls.inspera}/v1/test/{test_id}", headers=auth, json=body)
                else:
                    await client.post(f"{urls.inspera}/v1/test", headers=auth, json=body)
    return time.perf_counter() - started, items


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def bench(args: argparse.Namespace) -> None:
    total = args.institutions * args.assessments
    with child_sandbox(args.institutions, args.assessments, args.latency) as urls:
        before = await stats(urls)
        elapsed, failed, states = await pipeline_run(urls, args.institutions, [InstitutionState()] * args.institutions)
        after = await stats(urls)
        calls = (after["fs"] - before["fs"]) + (after["inspera"] - before["inspera"])
        print(
            f"examsync fs-inspera: {args.institutions} institutions x {args.assessments} assessments, "
            f"{args.latency * 1000:.0f} ms latency per request, {args.per_host} connections per host"
        )
        print(
            f"  first run (all new):   {elapsed:8.2f} s  {total / elapsed:8.1f} assessments/s  "
            f"{calls / total:.2f} upstream calls per assessment  failed={failed}  "
            f"tests={after['tests']}"
        )
        print(f"  peak RSS (operator side): {peak_rss_mb():.0f} MiB")

        before = await stats(urls)
        idle_elapsed, _, _ = await pipeline_run(urls, args.institutions, states)
        after = await stats(urls)
        print(
            f"  nothing changed:        {idle_elapsed:8.2f} s  FS calls per institution "
            f"{(after['fs'] - before['fs']) / args.institutions:.1f}  Inspera calls "
            f"{after['inspera'] - before['inspera']}  writes {after['writes'] - before['writes']}"
        )

        if args.baseline_institutions:
            async with httpx.AsyncClient() as client:
                await client.post(f"{urls.admin}/reset")
            before = await stats(urls)
            naive_elapsed, naive_items = await naive_run(urls, args.baseline_institutions)
            after = await stats(urls)
            naive_calls = (after["fs"] - before["fs"]) + (after["inspera"] - before["inspera"])
            naive_rate = naive_items / naive_elapsed
            print(
                f"  naive baseline ({args.baseline_institutions} institution(s), {naive_items} assessments): "
                f"{naive_elapsed:8.2f} s  {naive_rate:8.1f} assessments/s  "
                f"{naive_calls / naive_items:.2f} calls per assessment"
            )
            print(f"  speed-up over baseline: {(total / elapsed) / naive_rate:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--institutions", type=int, default=20)
    parser.add_argument("--assessments", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.015, help="seconds added to every request")
    parser.add_argument("--per-host", type=int, default=8, help="connections per upstream host")
    parser.add_argument(
        "--baseline-institutions", type=int, default=1, help="institutions the naive baseline handles (0: skip)"
    )
    args = parser.parse_args()
    from examsync.adapters.upstream.client import HOST_LIMITS

    HOST_LIMITS.per_host = args.per_host
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
