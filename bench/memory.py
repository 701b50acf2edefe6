"""Peak memory of one `examsync sync` run of one Institution with 10,000 new assessments.

The simulated FS and Inspera run in a child process (bench/run.py's sandbox) and examsync in
its own, so the figure is examsync's own peak RSS (scripts/peak_rss.py), with the size of the
state it keeps afterwards.

    .venv/bin/python bench/memory.py --assessments 10000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

# the repository root, for the benchmark this one shares its sandbox with (bench.run)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.run import first_run, sandbox


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assessments", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--per-host", type=int, default=8, help="connections per upstream host")
    args = parser.parse_args()
    args.profile = None
    args.py_spy = "py-spy"
    args.profile_rate = 100
    with sandbox(1, args.assessments, 0, args.latency) as sb, tempfile.TemporaryDirectory() as tmp:
        first, _, state = first_run(sb, 1, args.assessments, args.per_host, Path(tmp), args)
        run = first.run
        print(
            f"examsync fs-inspera memory: 1 Institution x {args.assessments} new assessments, "
            f"{args.latency * 1000:.0f} ms latency per request"
        )
        print(
            f"  run: {run.wall:.1f} s  created={run.total('created')} failed={run.total('failed')}  "
            f"tests in Inspera={first.stats['tests']}"
        )
        print(f"  peak RSS of examsync sync: {run.peak_rss_mib:.0f} MiB")
        print(f"  state kept: {state.stat().st_size} bytes")


if __name__ == "__main__":
    main()
