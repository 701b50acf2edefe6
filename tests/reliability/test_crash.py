"""`examsync sync --state FILE` killed with SIGKILL at random moments: the next runs with the same
file lose nothing and duplicate nothing. The sandbox runs in this process, each sync in a child."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from examsync.state import StateFile
from examsync_sandbox.simulators import fs as fs_sim
from examsync_sandbox.simulators import inspera as inspera_sim
from examsync_sandbox.simulators.serving import Faults
from tests.support.fleet import PIPELINE, Fleet, NoSandbox, seeded

# a little latency so a run lasts long enough for kills to land inside it
LATENCY = 0.004
CHILD_ENV = {"EXAMSYNC_HTTP_TIMEOUT": "5", "EXAMSYNC_RETRY_BASE_DELAY": "0.01"}


@dataclass
class Figures:
    trials: int = 0
    killed: int = 0  # trials the kill landed in (the others had finished already)
    killed_mid_writes: int = 0  # ... after the child had written to Inspera in that trial
    finished_first: int = 0
    run_seconds: float = 0.0  # the last unkilled run (first upstream call to exit): the kill window
    runs_to_converge: int = 0  # clean runs after the last trial
    duplicates: int = 0


def served(sb: NoSandbox) -> int:
    return sum(server.calls["total"] for server in sb.servers.values())


async def sync(
    sb: NoSandbox,
    file: Path,
    state: Path,
    kill_after: float | None,
) -> tuple[int | None, bytes, float]:
    """One `python -m examsync sync`, killed with SIGKILL `kill_after` s after its first upstream
    call if still running. Returns (exit code or None when killed, stdout, seconds since that call)."""
    before = served(sb)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "examsync",
        "sync",
        "-f",
        str(file),
        "--state",
        str(state),
        "--output",
        "json",
        "--log-level",
        "ERROR",
        "--allow-loopback",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, **CHILD_ENV},
    )
    output = asyncio.ensure_future(proc.communicate())
    while served(sb) == before and not output.done():
        await asyncio.sleep(0.002)  # the child is still starting (imports, files)
    started = time.monotonic()
    try:
        out, _ = await asyncio.wait_for(asyncio.shield(output), kill_after)
    except TimeoutError:
        try:
            proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:  # it exited just as the kill was due: a finished run
            out, _ = await output
            return proc.returncode, out, time.monotonic() - started
        await output
        return None, b"", time.monotonic() - started
    return proc.returncode, out, time.monotonic() - started


def change_fs(fs: fs_sim.World, fleet: Fleet, trial: int, rng: random.Random) -> None:
    """Between trials FS changes: a new assessment and a renamed one, so every run has writes."""
    known = sorted(fleet.expected())
    template = copy.deepcopy(fs.records[known[0]])
    template.pop("id")
    fs.add({**template, "emnekode": f"KRASJ{trial:03d}", "emnetittel": f"Krasjemne {trial}"}, changed=datetime.now(UTC))
    fs.touch(rng.choice(known), emnetittel=f"Omdøpt i forsøk {trial}")


async def crash_trials(tmp_path: Path, kills: int, seed: int, max_trials: int) -> Figures:
    """Trials until `kills` of them were killed mid-run (a run may finish before its kill lands)."""
    rng = random.Random(seed)
    figures = Figures()
    faults = {s: Faults(latency=LATENCY) for s in ("fs", "inspera", "gravitee")}
    async with NoSandbox(faults=faults) as sb:
        fs: fs_sim.World = sb.world("fs")
        inspera: inspera_sim.World = sb.world("inspera")
        fleet = Fleet.of(sb)
        _, _, manifests = seeded(sb)
        file = tmp_path / "institutions.yaml"
        file.write_text(yaml.safe_dump_all(manifests), encoding="utf-8")
        state = tmp_path / "state.json"

        for trial in range(max_trials):
            if figures.killed >= kills:
                break
            change_fs(fs, fleet, trial, rng)
            writes = sum(inspera.writes.values())
            # a random moment of the run: up to the length of the last run that finished (the first run,
            # which creates everything, is far longer than the rest: with its length most kills came late)
            code, _, seconds = await sync(sb, file, state, rng.uniform(0, figures.run_seconds or 1.0))
            figures.trials += 1
            if code is None:
                figures.killed += 1
                figures.killed_mid_writes += sum(inspera.writes.values()) > writes
            else:
                assert code in (0, 1)
                figures.finished_first += 1
                figures.run_seconds = seconds
            assert fleet.duplicates() == {}, f"trial {trial}"
            if state.exists():
                StateFile.load(state)  # never half written

        for _ in range(3):
            code, out, _ = await sync(sb, file, state, None)
            figures.runs_to_converge += 1
            assert code in (0, 1)
            if fleet.converged():
                break
        figures.duplicates = sum(fleet.duplicates().values())
        assert fleet.duplicates() == {}
        assert fleet.missing_or_stale() == {}
        # what is left failing is what the seed makes fail for good, each with its reason
        result = json.loads(out)
        failures = {(f["key"].split(":")[0], f["reason"]) for i in result["institutions"] for f in i["failures"]}
        assert failures <= {(PIPELINE, "Conflict"), (PIPELINE, "InvalidSourceData")}
    return figures


async def test_sigkill_at_random_moments_loses_and_duplicates_nothing_quick(tmp_path: Path) -> None:
    figures = await crash_trials(tmp_path, kills=3, seed=7, max_trials=12)
    print(f"\nkill -9 quick: {figures}")
    assert figures.killed == 3


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    figures = await crash_trials(tmp_path, kills=25, seed=2026, max_trials=60)
    print(f"\nkill -9: {figures}")
    assert figures.killed == 25
