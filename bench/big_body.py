"""Memory of `examsync sync` when an upstream answers 64 MiB (contracts/README.md, Security rule 2).

The sandbox runs in this process; each `examsync sync` runs as a child over every seeded
Institution, and its own peak RSS is read when it exits (scripts/peak_rss.py). Scenarios:

  baseline        no fault
  detail          one FS detail streams 64 MiB (chunked, no length): that item fails
  listing         the first FS listing announces 64 MiB (Content-Length): that source fails
  every-detail    every FS detail streams 64 MiB (a hostile FS): bodies being read share a
                  process-wide budget (adapters/upstream/body.BodyBudget: 1 MiB each, past that one of two
                  large-body slots, one per host), so memory holds one 16 MiB body of that host,
                  not one per connection; run it with --mib 256 as well to see that it does not
                  grow with the bodies' size
  every-target    FS answers as usual; Inspera, the Gravitee gateway, WISEflow and Praktikportalen
                  answer every request with 64 MiB: several hosts at once, both slots in use

    .venv/bin/python bench/big_body.py [--scenario NAME ...] [--mib 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from examsync_sandbox import seed_no
from examsync_sandbox.demo import write_manifests
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators.serving import Faults

MIB = 1024 * 1024
LIMIT_MIB = 150


PEAK_RSS = Path(__file__).resolve().parents[1] / "scripts" / "peak_rss.py"
SCENARIOS = ("baseline", "detail", "listing", "every-detail", "every-target")
EVERY_REQUEST = {f"{method} /": "huge-stream" for method in ("GET", "POST", "PUT", "PATCH", "DELETE")}


def faults_for(scenario: str, huge: int) -> dict[str, Faults]:
    """The faults of a scenario per system (the seed's CASES are filled once the sandbox has started)."""
    if scenario == "detail":
        return {
            "fs": Faults(huge_bytes=huge, once={f"GET /eksamen/INSPERA/{seed_no.CASES['uio-new']}$": ["huge-stream"]})
        }
    if scenario == "listing":
        return {"fs": Faults(huge_bytes=huge, once={"GET /eksamen/liste": ["huge"]})}
    if scenario == "every-detail":
        return {
            "fs": Faults(
                huge_bytes=huge,
                always={"GET /eksamen/INSPERA/": "huge-stream", "GET /eksamen/WISEFLOW/": "huge-stream"},
            )
        }
    if scenario == "every-target":
        targets = ("inspera", "gravitee", "wiseflow", "praktikportalen")
        return {system: Faults(huge_bytes=huge, always=dict(EVERY_REQUEST)) for system in targets}
    return {}


def run_child(args: list[str]) -> tuple[int, float, str, str]:
    """Run one child to its end; (exit code, its peak RSS in MiB, stdout, stderr)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as tmp:
        # through a small wrapper: a child forked from this process would report our peak RSS too
        peak_file = Path(tmp) / "peak"
        proc = subprocess.Popen([sys.executable, str(PEAK_RSS), str(peak_file), "--", *args], stdout=out, stderr=err)
        proc.wait()
        out.seek(0)
        err.seek(0)
        return proc.returncode, int(peak_file.read_text()) / 1024, out.read().decode(), err.read().decode()


async def scenario(name: str, huge: int, folder: Path) -> None:
    async with Sandbox() as sandbox:
        for system, wanted in faults_for(name, huge).items():
            faults = sandbox.server(system).faults
            faults.huge_bytes, faults.once, faults.always = wanted.huge_bytes, wanted.once, wanted.always
        files = write_manifests(sandbox, folder / name)
        args = [
            sys.executable,
            "-m",
            "examsync",
            "sync",
            "-o",
            "json",
            "--log-level",
            "WARNING",
            "--allow-loopback",
            *[a for f in files for a in ("-f", str(f))],
        ]
        code, peak, out, err = await asyncio.to_thread(run_child, args)
        report = json.loads(out) if out.strip().startswith("{") else {"institutions": []}
        streams = [s for server in sandbox.servers.values() for s in server.faults.streams]
    print(f"{name} ({huge // MIB} MiB answers):" if name != "baseline" else f"{name}:")
    print(
        f"  exit code {code}; peak RSS of the examsync sync process: {peak:.0f} MiB "
        f"({'under' if peak < LIMIT_MIB else 'OVER'} {LIMIT_MIB} MiB)"
    )
    for inst in report["institutions"]:
        done = _done(inst)
        failures = [f for f in inst["failures"] if "MiB" in f["message"]]
        print(f"  {inst['name']:<5} done: {done}")
        for failure in failures[:3]:
            print(f"        {failure['key'][:40]:<40} {failure['reason']}: {failure['message']}")
        if len(failures) > 3:
            print(f"        ... and {len(failures) - 3} more failed the same way")
    if streams:
        cut = [s for s in streams if s.cut]
        print(
            f"  {huge // MIB} MiB answers: {len(streams)}; cut short by the client: {len(cut)}; "
            f"most sent before the cut: {max(s.sent for s in streams) / MIB:.1f} MiB"
        )
    if not report["institutions"]:
        print("  no report:", err[-2000:])


def _done(inst: dict[str, Any]) -> str:
    parts = []
    for pipeline, counts in inst["pipelines"].items():
        shown = ", ".join(f"{k}={v}" for k, v in counts.items() if v and k != "missingResponsible")
        parts.append(f"{pipeline} ({shown})")
    return "; ".join(parts)


async def main(scenarios: list[str], huge_mib: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name in scenarios:
            await scenario(name, huge_mib * MIB, Path(tmp))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", action="append", choices=SCENARIOS)
    parser.add_argument("--mib", type=int, default=64, help="size of each hostile answer")
    ns = parser.parse_args()
    asyncio.run(main(ns.scenario or list(SCENARIOS), ns.mib))
