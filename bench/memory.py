"""Peak memory of one fs-inspera run of 10,000 assessments against the sandbox.

The simulated FS and Inspera run in a child process (bench/run.py's `serve`), so the figure is the
operator side's own: peak RSS (getrusage) before and after one run of one Institution whose FS
lists every assessment as changed.

    .venv/bin/python bench/memory.py --assessments 10000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

# the repository root, for the benchmark this one shares its sandbox with (bench.run)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.run import SECRETS, child_sandbox, no_audit, peak_rss_mb, spec_for, stats
from examsync.pipelines.runner import RunOptions, run_institution
from examsync.state import InstitutionState


async def measure(assessments: int, latency: float) -> None:
    with child_sandbox(1, assessments, latency) as urls:
        before = peak_rss_mb()
        started = time.perf_counter()
        report, state = await run_institution(
            "i0", "bench", spec_for(urls, 0), SECRETS, InstitutionState(), RunOptions(audit=no_audit)
        )
        elapsed = time.perf_counter() - started
        counts = report.pipelines["fs-inspera"].counts
        served = await stats(urls)
        print(
            f"examsync fs-inspera memory: 1 institution x {assessments} assessments, "
            f"{latency * 1000:.0f} ms latency per request"
        )
        print(
            f"  run: {elapsed:.1f} s  discovered={counts['discovered']} created={counts['created']} "
            f"failed={counts['failed']}  tests in Inspera={served['tests']}"
        )
        print(f"  peak RSS before the run: {before:.0f} MiB")
        print(f"  peak RSS after the run:  {peak_rss_mb():.0f} MiB")
        print(f"  state kept: {len(state.pipeline('fs-inspera').model_dump_json())} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assessments", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    args = parser.parse_args()
    asyncio.run(measure(args.assessments, args.latency))


if __name__ == "__main__":
    main()
