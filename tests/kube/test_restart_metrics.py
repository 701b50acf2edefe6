"""After a restart, /metrics says what status says before any run: alerts that held still hold.

A first `examsync run` process runs three Institutions (one succeeds, one stalls on a refused FS
login, one is suspended); it stops, a second process starts, and within 30 seconds of its start
its /metrics holds every series status gives, equal to status, while no upstream is called and
no run starts (each next run is hours away).
"""

from __future__ import annotations

import copy
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client.samples import Sample

from examsync_sandbox.server import Sandbox
from tests.support.kube_harness import (
    NAMESPACE,
    Cluster,
    OperatorProcess,
    apply_all,
    runs,
    scrape_until,
    select,
    total,
    uio,
)

# what the contract names, and what the alerts and the dashboard read besides
SERIES = (
    "examsync_institution_condition",
    "examsync_last_success_timestamp_seconds",
    "examsync_suspended",
    "examsync_interval_seconds",
    "examsync_missing_responsible",
)
START_TO_SCRAPE_SECONDS = 30.0  # the contract's bound from the process' start


def variant(inst: dict[str, Any], name: str, **spec: Any) -> dict[str, Any]:
    """``inst`` under another name, without sinks (they would only add calls)."""
    out = copy.deepcopy(inst)
    out["metadata"] = {"name": name, "namespace": NAMESPACE}
    out["spec"].pop("notifications", None)
    out["spec"].pop("audit", None)
    out["spec"].update(spec)
    return out


def upstream_calls(sandbox: Sandbox) -> int:
    return sum(sum(server.calls.values()) for server in sandbox.servers.values())


def condition_samples(samples: list[Sample], institution: str) -> dict[tuple[str, str], float]:
    return {
        (s.labels["type"], s.labels["status"]): s.value
        for s in select(samples, "examsync_institution_condition", institution=institution)
    }


async def test_a_restarted_operator_exports_what_status_says_before_any_run(
    cluster: Cluster, sandbox: Sandbox, tmp_path: Path
) -> None:
    inst, secrets = uio(sandbox)
    await apply_all(cluster, inst, secrets)
    # refused login at FS: Stalled (Unauthorized), Ready False, never a success
    locked_secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "uio-locked-fs", "namespace": NAMESPACE},
        "stringData": {"username": "nobody", "password": "wrong"},
    }
    await cluster.apply(locked_secret)
    locked = variant(inst, "uio-locked")
    locked["spec"]["fs"]["credentialsSecretRef"] = {"name": "uio-locked-fs"}
    await cluster.apply(locked)
    await cluster.apply(variant(inst, "uio-paused", suspend=True))
    names = ("uio", "uio-locked", "uio-paused")

    def settled() -> bool:
        return (
            runs(cluster, "uio") >= 1
            and runs(cluster, "uio-locked") >= 1
            and cluster.condition("uio-paused", "Reconciling").get("reason") == "Suspended"
            and all(cluster.condition(n, "Reconciling").get("status") == "False" for n in names)
        )

    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    async with OperatorProcess(cluster.url, first):
        await cluster.wait_for(settled, timeout=90)

    statuses = {n: cluster.emulator.status(n) for n in names}
    assert statuses["uio"]["lastSuccessTime"] and cluster.condition("uio", "Ready")["status"] == "True"
    assert cluster.condition("uio-locked", "Stalled")["status"] == "True"
    assert "lastSuccessTime" not in statuses["uio-locked"]
    missing = statuses["uio"]["pipelines"]["fs-inspera"]["missingResponsible"]
    assert missing > 0  # the seed has an assessment with no responsible
    calls_before = upstream_calls(sandbox)

    keys = {n: f"{NAMESPACE}/{n}" for n in names}

    def restored(samples: list[Sample]) -> bool:
        return all(select(samples, "examsync_suspended", institution=k) for k in keys.values()) and all(
            select(samples, "examsync_institution_condition", institution=k) for k in keys.values()
        )

    async with OperatorProcess(cluster.url, second) as proc:
        samples = await scrape_until(cluster.http, proc, restored, timeout=START_TO_SCRAPE_SECONDS)

        for name, key in keys.items():
            status = statuses[name]
            # every condition status holds, one-hot over True/False/Unknown
            want = {
                (cond["type"], value): 1.0 if cond["status"] == value else 0.0
                for cond in status["conditions"]
                for value in ("True", "False", "Unknown")
            }
            assert condition_samples(samples, key) == want, name
            assert total(samples, "examsync_suspended", institution=key) == (1.0 if name == "uio-paused" else 0.0)
            assert total(samples, "examsync_interval_seconds", institution=key) == 6 * 3600
        success = datetime.fromisoformat(statuses["uio"]["lastSuccessTime"])
        assert success is not None
        last = select(samples, "examsync_last_success_timestamp_seconds", institution=keys["uio"])
        assert [(s.labels["pipeline"], s.value) for s in last] == [("fs-inspera", success.timestamp())]
        assert not select(samples, "examsync_last_success_timestamp_seconds", institution=keys["uio-locked"])
        assert total(samples, "examsync_missing_responsible", institution=keys["uio"], pipeline="fs-inspera") == missing
        for name in SERIES:
            assert select(samples, name, institution=keys["uio"]), name
        # the run series exist at 0, so the first failure after the restart shows in increase()
        run_series = select(samples, "examsync_runs_total", institution=keys["uio"])
        assert {s.labels["result"]: s.value for s in run_series} == {"succeeded": 0.0, "failed": 0.0}

        # no run came first: nothing was called, no status moved, nothing counted
        assert upstream_calls(sandbox) == calls_before
        assert total(samples, "examsync_upstream_requests_total") == 0
        assert {n: cluster.emulator.status(n).get("history") for n in names} == {
            n: statuses[n].get("history") for n in names
        }
        assert all(cluster.condition(n, "Reconciling")["status"] == "False" for n in names)
