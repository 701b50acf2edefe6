"""`examsync sync` as a user runs it: a real process against the sandbox, report on stdout only."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from examsync_sandbox.demo import write_manifests
from examsync_sandbox.server import Sandbox

REPORT_KEYS = {"name", "namespace", "mode", "pipelines", "failures", "plan"}


async def sync(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "examsync",
        "sync",
        "--allow-loopback",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_json_report_state_and_metrics_file(sandbox: Sandbox, tmp_path: Path) -> None:
    files = write_manifests(sandbox, tmp_path / "manifests")
    state, metrics = tmp_path / "state.json", tmp_path / "examsync.prom"
    args = [a for f in files for a in ("-f", str(f))]
    code, out, err = await sync(*args, "-o", "json", "--state", str(state), "--metrics-file", str(metrics))

    assert code == 1  # the seed holds items that fail on purpose (a conflict, an invalid record)
    report = json.loads(out)  # stdout holds the report and nothing else
    institutions = {i["name"]: i for i in report["institutions"]}
    assert set(institutions) == {"uio", "uib", "ntnu", "ucx"}
    assert all(set(i) == REPORT_KEYS for i in institutions.values())
    assert institutions["uio"]["pipelines"]["fs-inspera"]["created"] > 0
    assert institutions["uio"]["plan"] == []  # plan only in DryRun
    assert {f["reason"] for f in institutions["uio"]["failures"]} == {"Conflict", "InvalidSourceData"}
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines and len(lines) == len(err.splitlines())  # logs are JSON lines on stderr
    assert any(line.get("logger") == "examsync.audit" for line in lines)
    assert "examsync_items_total{" in metrics.read_text(encoding="utf-8")
    assert json.loads(state.read_text(encoding="utf-8"))["institutions"]["examsync/uio"]["pipelines"]

    # the same files and state again: nothing changed in FS, nothing is written
    creates_before = sandbox.world("inspera").writes["create"]
    code, out, _ = await sync(*args, "-o", "json", "--state", str(state))
    again = {i["name"]: i for i in json.loads(out)["institutions"]}
    assert again["uio"]["pipelines"]["fs-inspera"]["created"] == 0
    assert again["uio"]["pipelines"]["fs-inspera"]["updated"] == 0
    assert sandbox.world("inspera").writes["create"] == creates_before


async def test_dry_run_writes_nothing_and_lists_the_plan(sandbox: Sandbox, tmp_path: Path) -> None:
    files = write_manifests(sandbox, tmp_path / "manifests")
    uib = next(f for f in files if f.name == "examsync-uib.yaml")
    code, out, _ = await sync("-f", str(uib), "--dry-run", "-o", "json")
    assert code == 0
    (inst,) = json.loads(out)["institutions"]
    assert inst["mode"] == "DryRun"
    creates = [p for p in inst["plan"] if p["action"] == "create"]
    assert len(creates) == inst["pipelines"]["fs-inspera"]["created"] > 0
    assert {"title", "startTime", "externalTestId"} <= set(creates[0]["fields"])
    assert sum(sandbox.world("inspera").writes.values()) == 0


async def test_text_report_has_a_row_per_institution(sandbox: Sandbox, tmp_path: Path) -> None:
    files = write_manifests(sandbox, tmp_path / "manifests")
    code, out, _ = await sync(*[a for f in files for a in ("-f", str(f))], "--dry-run")
    assert code == 1
    for key in ("examsync/uio", "examsync/uib", "examsync/ntnu", "examsync/ucx"):
        assert key in out
    assert "fs-inspera" in out and "praktikportalen-wiseflow" in out
