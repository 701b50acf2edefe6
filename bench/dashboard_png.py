"""The README's dashboard picture: what the Grafana dashboard shows, drawn from real sandbox runs.

Starts the sandbox, syncs its institutions several times (FS changes between runs, and FS
misbehaves for two of them), samples the operator's metrics registry after each run and plots
the dashboard's main panels with matplotlib to docs/dashboard.png.

    .venv/bin/pip install -e '.[docs]'
    .venv/bin/python bench/dashboard_png.py [--runs 8] [--output docs/dashboard.png]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from examsync import metrics
from examsync.commands.sync import sync_manifests
from examsync.commands.upstream import configure_allowed_hosts
from examsync.logs import setup_logging
from examsync.manifests import load_manifests
from examsync_sandbox.demo import write_manifests
from examsync_sandbox.server import Sandbox

Sample = dict[tuple[str, tuple[tuple[str, str], ...]], float]
ACTIONS = ("created", "updated", "unchanged", "skipped", "failed")
FS_TROUBLE_RUNS = (4, 5)  # 1-based runs during which FS answers 503 to a share of requests


def snapshot() -> Sample:
    out: Sample = {}
    for family in metrics.registry.collect():
        if not family.name.startswith("examsync_"):
            continue
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def total(sample: Sample, name: str, by: str, **match: str) -> dict[str, float]:
    """sum by (label) of one series name, over series matching the given labels."""
    sums: dict[str, float] = defaultdict(float)
    for (series, labels), value in sample.items():
        if series != name:
            continue
        lab = dict(labels)
        if all(lab.get(k) == v for k, v in match.items()):
            sums[lab.get(by, "")] += value
    return dict(sums)


def delta(now: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in now.items()}


def change_fs(sandbox: Sandbox, run: int, rng: random.Random) -> None:
    """Between runs: a few assessments get a new title (updates), one new assessment appears."""
    world = sandbox.world("fs")
    good = [
        fs_id
        for fs_id, rec in world.records.items()
        if rec.get("start") and rec.get("kandidater") and fs_id not in world.gone
    ]
    for fs_id in rng.sample(good, k=min(len(good), rng.randint(1, 3))):
        world.touch(fs_id, emnetittel=f"{world.records[fs_id].get('emnetittel')} ({run})")
    template = dict(world.records[rng.choice(good)])
    template.update(id=None, emnekode=f"{template['emnekode']}X{run}")
    world.add(template)


async def collect(runs: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    rng = random.Random(7)
    async with Sandbox() as sandbox:
        with tempfile.TemporaryDirectory() as tmp:
            paths = write_manifests(sandbox, Path(tmp) / "manifests")
            configure_allowed_hosts(allow_loopback=True)  # the sandbox is on loopback
            manifests = load_manifests(paths)
            state = Path(tmp) / "state.json"
            before = snapshot()
            for run in range(1, runs + 1):
                if run > 1:
                    change_fs(sandbox, run, rng)
                sandbox.server("fs").faults.error_rate = 0.35 if run in FS_TROUBLE_RUNS else 0.0
                result = await sync_manifests(manifests, state_path=state)
                ready = not_ready = 0
                durations = {}
                for report in result.reports:
                    metrics.set_view(report.key, metrics.conditions_for(report), False, 6 * 3600)
                    ready, not_ready = (ready, not_ready + 1) if report.failed else (ready + 1, not_ready)
                    durations[report.key] = report.duration
                now = snapshot()

                def diff(
                    name: str, by: str, now: Sample = now, before: Sample = before, **match: str
                ) -> dict[str, float]:
                    return delta(total(now, name, by, **match), total(before, name, by, **match))

                latency = "examsync_upstream_request_duration_seconds"
                rows.append(
                    {
                        "run": run,
                        "ready": ready,
                        "not_ready": not_ready,
                        "suspended": len(result.suspended),
                        "items": diff("examsync_items_total", "action"),
                        "failed_by_reason": diff("examsync_items_total", "reason", action="failed"),
                        "lat_sum": diff(f"{latency}_sum", "system"),
                        "lat_count": diff(f"{latency}_count", "system"),
                        "errors": delta(_errors(now), _errors(before)),
                        "durations": durations,
                    }
                )
                before = now
    return rows


def _errors(sample: Sample) -> dict[str, float]:
    sums: dict[str, float] = defaultdict(float)
    for (series, labels), value in sample.items():
        lab = dict(labels)
        if series == "examsync_upstream_requests_total" and not lab["code"].startswith(("2", "3", "404")):
            sums[lab["system"]] += value
    return dict(sums)


def plot(rows: list[dict[str, Any]], output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    runs = [r["run"] for r in rows]
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5), dpi=72)
    trouble = " and ".join(map(str, FS_TROUBLE_RUNS))
    title = f"examsync — sandbox institutions over {len(rows)} sync runs (FS returns 503s in runs {trouble})"
    fig.suptitle(title, fontsize=12)

    ax = axes[0][0]
    ax.bar(runs, [r["ready"] for r in rows], color="#56a64b", label="Ready")
    ax.bar(runs, [r["not_ready"] for r in rows], bottom=[r["ready"] for r in rows], color="#e02f44", label="not Ready")
    ax.set_title("Institutions by Ready condition")
    ax.legend(loc="lower right", fontsize=8)

    ax = axes[0][1]
    bottom = [0.0] * len(rows)
    colors = {
        "created": "#5794f2",
        "updated": "#b877d9",
        "unchanged": "#c7d0d9",
        "skipped": "#ff9830",
        "failed": "#e02f44",
    }
    for action in ACTIONS:
        values = [r["items"].get(action, 0.0) for r in rows]
        ax.bar(runs, values, bottom=bottom, color=colors[action], label=action)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_title("Items by action per run")
    ax.legend(fontsize=8, ncol=2)

    ax = axes[0][2]
    reasons = sorted({k for r in rows for k, v in r["failed_by_reason"].items() if v})
    for reason in reasons:
        ax.plot(runs, [r["failed_by_reason"].get(reason, 0.0) for r in rows], marker="o", label=reason)
    ax.set_title("Failed items by reason")
    ax.legend(fontsize=8)

    systems = sorted({k for r in rows for k, v in r["lat_count"].items() if v})
    ax = axes[1][0]
    for system in systems:
        means = [
            1000 * r["lat_sum"].get(system, 0.0) / r["lat_count"][system]
            if r["lat_count"].get(system)
            else float("nan")
            for r in rows
        ]
        ax.plot(runs, means, marker="o", label=system)
    ax.set_title("Upstream latency, mean (ms)")
    ax.legend(fontsize=8)

    ax = axes[1][1]
    for system in systems:
        ax.plot(runs, [r["errors"].get(system, 0.0) for r in rows], marker="o", label=system)
    ax.set_title("Upstream errors (5xx, 429, timeouts) by system")
    ax.legend(fontsize=8)

    ax = axes[1][2]
    institutions = sorted({k for r in rows for k in r["durations"]})
    for inst in institutions:
        ax.plot(runs, [r["durations"].get(inst, float("nan")) for r in rows], marker="o", label=inst)
    ax.set_title("Run duration (s)")
    ax.legend(fontsize=8)

    for ax in (axes[0][0], axes[0][1], axes[0][2], axes[1][1]):
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(bottom=0)
    for ax in axes.flat:
        ax.set_xticks(runs)
        ax.set_xlabel("sync run", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, format="png", metadata={"Software": None})
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--output", type=Path, default=Path("docs/dashboard.png"))
    args = parser.parse_args()
    with open(Path(tempfile.gettempdir()) / "examsync-dashboard.log", "w", encoding="utf-8") as log:
        setup_logging("WARNING", log)
        rows = asyncio.run(collect(args.runs))
        logging.shutdown()
    plot(rows, args.output)
    print(f"wrote {args.output} ({args.output.stat().st_size // 1024} KiB) from {len(rows)} runs")


if __name__ == "__main__":
    main()
