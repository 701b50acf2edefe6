"""Many Institutions spread over time; `examsync run` stops cleanly on SIGTERM mid-run."""

from __future__ import annotations

import asyncio
import copy
import os
import signal
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators.serving import Faults
from tests.support.kube_harness import Cluster, OperatorFactory, apply_all, idle_after, uio, write_kubeconfig


@pytest.mark.looptime
async def test_many_institutions_get_jittered_schedules(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox)
    # the schedule is what is tested: an FS institution with nothing to list keeps the runs short
    inst["spec"]["mode"] = "DryRun"
    inst["spec"]["fs"]["institutionNumber"] = "999"
    for secret in secrets:
        await cluster.apply(secret)
    names = [f"inst-{i:02d}" for i in range(20)]
    for name in names:
        manifest = copy.deepcopy(inst)
        manifest["metadata"]["name"] = name
        await cluster.apply(manifest)
    async with operator():
        await cluster.wait_for(lambda: all(idle_after(cluster, 1, n) for n in names), timeout=120)

    interval = timedelta(hours=6)
    gaps, dues = [], []
    for name in names:
        status = cluster.emulator.status(name)
        due = datetime.fromisoformat(status["nextRunTime"])
        gaps.append(due - datetime.fromisoformat(status["lastRunTime"]))
        dues.append(due)
    assert all(interval <= g <= interval * 1.1 + timedelta(seconds=5) for g in gaps)
    # spread over the jitter window rather than bunched: distinct seconds, minutes apart overall
    assert len({d.replace(microsecond=0) for d in dues}) == len(names)
    assert max(dues) - min(dues) >= timedelta(minutes=10)


async def test_sigterm_stops_taking_items_finishes_in_flight_and_exits(cluster: Cluster, tmp_path: Path) -> None:
    # one item at a time at 0.5 s per FS call: a run of about 10 s, so the SIGTERM lands inside it
    # even on a loaded machine
    async with Sandbox(faults={"fs": Faults(latency=0.5)}) as sandbox:
        inst, secrets = uio(sandbox)
        inst["spec"]["inspera"]["concurrency"] = 1
        await apply_all(cluster, inst, secrets)
        env = {
            **os.environ,
            "KUBECONFIG": str(write_kubeconfig(tmp_path / "kubeconfig", cluster.url)),
            "EXAMSYNC_ALLOWED_HOSTS": "127.0.0.1",
        }
        exe = Path(sys.executable).with_name("examsync")
        proc = await asyncio.create_subprocess_exec(
            str(exe),
            "run",
            "--standalone",
            "-A",
            "--quiet",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await cluster.wait_for(lambda: cluster.condition("uio", "Reconciling").get("status") == "True", timeout=60)
            await asyncio.sleep(1.0)  # a few items in
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                _, stderr = await proc.communicate()
            took = time.monotonic() - sent
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    assert proc.returncode == 0, stderr.decode()[-2000:]
    assert took < 25  # within the pod's grace period (30 s by default)
    status = cluster.emulator.status("uio")
    # the run ended on its own: its status was written before the exit
    assert cluster.condition("uio", "Reconciling")["status"] == "False"
    assert len(status["history"]) == 1
    # cut short: due again at once, so the next operator resumes it (spread over ≤ 5 minutes)
    next_run, last_run = (datetime.fromisoformat(status[key]) for key in ("nextRunTime", "lastRunTime"))
    assert next_run - last_run < timedelta(minutes=1)
    counts = status["pipelines"]["fs-inspera"]
    # items not yet started were not taken; they wait in the retry set for the next run
    stopping = [f for f in status["failures"] if "operator stopping" in f["message"]]
    assert stopping and counts["failed"] >= len(stopping)
    retry = set(status["progress"]["pipelines"]["fs-inspera"]["retry"])
    assert {f["key"].split(":", 1)[1] for f in stopping} <= retry
