"""`examsync run` with EXAMSYNC_AUDIT_DB: one store for the process, every Institution's records in
it, the last ones flushed when the operator stops."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from pathlib import Path

from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators.serving import Faults
from tests.support.kube_harness import Cluster, OperatorProcess, apply_all, free_port, idle_after, uio


async def test_the_operator_keeps_every_institutions_records_in_one_store(
    cluster: Cluster, sandbox: Sandbox, tmp_path: Path
) -> None:
    inst, secrets = uio(sandbox)
    await apply_all(cluster, inst, secrets)
    manifests = sandbox.manifests()
    for doc in manifests:
        if doc["metadata"]["name"] == "uib" or doc["metadata"]["name"].startswith("uib-"):
            await cluster.apply(doc)
    db = tmp_path / "audit.db"
    env = {"EXAMSYNC_AUDIT_DB": f"sqlite:///{db}", "EXAMSYNC_AUDIT_RETENTION_DAYS": "30"}
    async with OperatorProcess(cluster.url, tmp_path, env=env) as proc:
        await cluster.wait_for(lambda: idle_after(cluster, 1, "uio") and idle_after(cluster, 1, "uib"), timeout=120)
    assert proc.proc is not None and proc.proc.returncode == 0, proc.log_tail()

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT institution, run_id, action FROM audit_records").fetchall()
    for name in ("uio", "uib"):
        (entry,) = cluster.emulator.status(name)["history"]
        mine = [(run, action) for institution, run, action in rows if institution == f"examsync/{name}"]
        assert {run for run, _ in mine} == {entry["runId"]}
        # one row per item the run counted, by action
        assert Counter(action for _, action in mine) == {k: v for k, v in entry["counts"].items() if v}
    assert "audit records not" not in proc.log_tail(100_000)


async def test_records_of_a_run_cut_short_by_sigterm_are_stored_before_exit(cluster: Cluster, tmp_path: Path) -> None:
    # one item at a time at 0.3 s per FS call: the SIGTERM lands inside the run
    async with Sandbox(faults={"fs": Faults(latency=0.3)}) as sandbox:
        inst, secrets = uio(sandbox)
        inst["spec"]["inspera"]["concurrency"] = 1
        await apply_all(cluster, inst, secrets)
        db = tmp_path / "audit.db"
        proc = await OperatorProcess(cluster.url, tmp_path, env={"EXAMSYNC_AUDIT_DB": f"sqlite:///{db}"}).start()
        try:
            await cluster.wait_for(lambda: cluster.condition("uio", "Reconciling").get("status") == "True", timeout=60)
            await asyncio.sleep(1.0)  # a few items in
            assert await proc.stop() == 0, proc.log_tail()
        finally:
            await proc.stop()
    (entry,) = cluster.emulator.status("uio")["history"]
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT action FROM audit_records WHERE run_id = ?", (entry["runId"],)).fetchall()
    # every item the cut-short run counted (the ones not taken are failed "operator stopping") has its row
    assert Counter(action for (action,) in rows) == {k: v for k, v in entry["counts"].items() if v}
    assert entry["counts"]["failed"] > 0


async def test_a_store_that_is_down_leaves_ready_alone_and_its_password_unprinted(
    cluster: Cluster, sandbox: Sandbox, tmp_path: Path
) -> None:
    inst, secrets = uio(sandbox)
    await apply_all(cluster, inst, secrets)
    password = "Not-Printed-Anywhere-9"
    env = {"EXAMSYNC_AUDIT_DB": f"postgresql://examsync:{password}@127.0.0.1:{free_port()}/audit"}
    async with OperatorProcess(cluster.url, tmp_path, "--verbose", env=env) as proc:
        await cluster.wait_for(lambda: idle_after(cluster, 1, "uio"), timeout=120)
    assert proc.proc is not None and proc.proc.returncode == 0, proc.log_tail()
    ready = cluster.condition("uio", "Ready")
    assert ready["status"] == "True", ready
    log = proc.log_tail(1_000_000)
    assert "audit records not stored" in log  # what was still waiting at shutdown is counted and told
    assert "postgresql://examsync:***@127.0.0.1" in log and password not in log
