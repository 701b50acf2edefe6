"""The operator in-process against the Kubernetes emulator and the sandbox's FS and Inspera.

Loop time is fast-forwarded (looptime), so hours of schedule pass in milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest

from examsync import metrics
from examsync_sandbox import seed_no
from examsync_sandbox.server import Sandbox
from tests.support.kube_harness import Cluster, OperatorFactory, apply_all, idle_after, runs, uio
from tests.support.metric_samples import sample_value

pytestmark = pytest.mark.looptime

COUNTS = re.compile(r"\d+ created, \d+ updated, \d+ unchanged, \d+ skipped, \d+ failed")


def runs_total() -> float:
    labels = {"institution": "examsync/uio", "pipeline": "fs-inspera", "result": "succeeded"}
    return sample_value("examsync_runs_total", labels) or 0.0


async def test_new_institution_runs_and_reports_ready_with_counts(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox)
    await apply_all(cluster, inst, secrets)
    before = runs_total()
    async with operator():
        await cluster.wait_for(lambda: idle_after(cluster, 1), timeout=30)
        await cluster.wait_for(lambda: any(e["reason"] == "RunFinished" for e in cluster.emulator.events("uio")))

    status = cluster.emulator.status("uio")
    counts = status["pipelines"]["fs-inspera"]
    assert counts["created"] > 0 and counts["failed"] == 0
    assert counts["discovered"] == sum(counts[k] for k in ("created", "updated", "unchanged", "skipped", "failed"))
    ready = cluster.condition("uio", "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Succeeded")
    assert ready["message"] == f"{counts['created']} created, {counts['updated']} updated, 0 failed"
    assert ready["observedGeneration"] == 1 and status["observedGeneration"] == 1
    assert cluster.condition("uio", "Reconciling")["reason"] == "Idle"
    assert cluster.condition("uio", "Stalled")["status"] == "False"
    assert status["lastSuccessTime"] == status["lastRunTime"]
    assert status["mode"] == "Apply" and status["failures"] == []
    assert status["history"][0]["result"] == "Succeeded"
    assert status["history"][0]["counts"]["created"] == counts["created"]
    # the schedule: the interval (6h) plus a jitter of at most 10 %
    gap = datetime.fromisoformat(status["nextRunTime"]) - datetime.fromisoformat(status["lastRunTime"])
    assert timedelta(hours=6) <= gap <= timedelta(hours=6.6, seconds=2)
    # durable progress: FS watermark kept under status
    assert status["progress"]["pipelines"]["fs-inspera"]["watermark"]
    # the Inspera tests were really made
    assert sandbox.world("inspera").writes["create"] == counts["created"]
    assert runs_total() == before + 1

    normal = [e for e in cluster.emulator.events("uio") if e["reason"] == "RunFinished"]
    assert len(normal) == 1 and normal[0]["type"] == "Normal"
    assert COUNTS.search(normal[0]["message"]) and "next run in 6h" in normal[0]["message"]
    assert normal[0]["message"].startswith("Run finished in ")


async def test_failed_items_make_ready_false_with_warning_per_new_reason(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox, clean=False)
    await apply_all(cluster, inst, secrets)
    async with operator():
        await cluster.wait_for(lambda: idle_after(cluster, 1), timeout=30)
        await cluster.wait_for(lambda: any(e["type"] == "Warning" for e in cluster.emulator.events("uio")))
        await asyncio.sleep(1)

    status = cluster.emulator.status("uio")
    ready = cluster.condition("uio", "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ItemsFailed")
    assert ready["message"].endswith(f"{status['pipelines']['fs-inspera']['failed']} failed")
    reasons = {f["reason"] for f in status["failures"]}
    assert {"Conflict", "InvalidSourceData"} <= reasons
    assert all(f["key"].startswith("fs-inspera:") for f in status["failures"])
    warnings = {e["reason"] for e in cluster.emulator.events("uio") if e["type"] == "Warning"}
    assert {"Conflict", "InvalidSourceData"} <= warnings
    assert "Stalled" not in warnings
    assert cluster.condition("uio", "Stalled")["status"] == "False"
    assert status["history"][0]["result"] == "ItemsFailed"
    assert "lastSuccessTime" not in status
    # failed ids wait in the retry set of the durable progress
    assert len(status["progress"]["pipelines"]["fs-inspera"]["retry"]) == status["pipelines"]["fs-inspera"]["failed"]


async def test_spec_change_runs_promptly_and_observed_generation_follows(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox)
    await apply_all(cluster, inst, secrets)
    async with operator():
        await cluster.wait_for(lambda: idle_after(cluster, 1), timeout=30)
        await cluster.patch("uio", {"spec": {"lookback": "48h"}})
        assert cluster.emulator.institution("uio")["metadata"]["generation"] == 2
        await cluster.wait_for(lambda: idle_after(cluster, 2), timeout=30)

    status = cluster.emulator.status("uio")
    assert status["observedGeneration"] == 2
    assert all(c["observedGeneration"] == 2 for c in status["conditions"])
    assert len(status["history"]) == 2
    # the second run came long before the schedule would have made it
    first, second = (datetime.fromisoformat(h["start"]) for h in reversed(status["history"]))
    assert second - first < timedelta(minutes=1)


async def test_requested_at_annotation_runs_at_once_and_is_echoed(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox)
    await apply_all(cluster, inst, secrets)
    async with operator():
        await cluster.wait_for(lambda: idle_after(cluster, 1), timeout=30)
        assert "lastHandledRequestedAt" not in cluster.emulator.status("uio")
        await cluster.patch("uio", {"metadata": {"annotations": {"examsync.io/requested-at": "1763876400"}}})
        await cluster.wait_for(lambda: cluster.emulator.status("uio").get("lastHandledRequestedAt") == "1763876400")
        await asyncio.sleep(60)  # nothing else is due: no third run
        assert runs(cluster) == 2

    status = cluster.emulator.status("uio")
    assert status["observedGeneration"] == 1  # an annotation is no new generation
    assert len(status["history"]) == 2


async def test_suspend_stops_runs_but_status_follows(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox)
    await apply_all(cluster, inst, secrets)
    async with operator():
        await cluster.wait_for(lambda: idle_after(cluster, 1), timeout=30)
        ready_before = cluster.condition("uio", "Ready")

        await cluster.patch("uio", {"spec": {"suspend": True}})
        await cluster.wait_for(lambda: cluster.condition("uio", "Reconciling").get("reason") == "Suspended")
        await cluster.patch("uio", {"metadata": {"annotations": {"examsync.io/requested-at": "42"}}})
        await asyncio.sleep(8 * 3600)  # past the interval, loop time
        status = cluster.emulator.status("uio")
        assert runs(cluster) == 1
        assert status["observedGeneration"] == 2
        assert "lastHandledRequestedAt" not in status  # not echoed while suspended
        assert "nextRunTime" not in status
        ready = cluster.condition("uio", "Ready")
        assert {k: ready[k] for k in ("status", "reason", "message", "lastTransitionTime")} == {
            k: ready_before[k] for k in ("status", "reason", "message", "lastTransitionTime")
        }
        assert cluster.condition("uio", "Reconciling")["status"] == "False"

        await cluster.patch("uio", {"spec": {"suspend": False}})
        await cluster.wait_for(lambda: idle_after(cluster, 2), timeout=30)

    status = cluster.emulator.status("uio")
    assert status["observedGeneration"] == 3
    assert status["lastHandledRequestedAt"] == "42"
    assert cluster.condition("uio", "Reconciling")["reason"] == "Idle"


async def stalled_for(cluster: Cluster, reason: str) -> str:
    """Wait until Stalled is True; Ready says False for the same reason. The Stalled message."""
    await cluster.wait_for(lambda: cluster.condition("uio", "Stalled").get("status") == "True", timeout=30)
    stalled = cluster.condition("uio", "Stalled")
    assert stalled["reason"] == reason
    ready = cluster.condition("uio", "Ready")
    assert (ready["status"], ready["reason"]) == ("False", reason)
    return str(stalled["message"])


async def run_again(cluster: Cluster) -> None:
    """Request a run by hand and wait for it to end."""
    await cluster.patch("uio", {"metadata": {"annotations": {"examsync.io/requested-at": "1"}}})
    await cluster.wait_for(lambda: idle_after(cluster, 2), timeout=30)


def recovered(cluster: Cluster) -> bool:
    return (cluster.condition("uio", "Stalled")["status"], cluster.condition("uio", "Ready")["status"]) == (
        "False",
        "True",
    )


async def test_missing_secret_stalls_naming_it_and_a_new_secret_is_read_on_the_next_run(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox)
    await cluster.apply(inst)  # no Secrets yet
    async with operator():
        message = await stalled_for(cluster, "SecretMissing")
        assert "spec.fs.credentialsSecretRef" in message and "uio-fs" in message
        await cluster.wait_for(
            lambda: any(e["reason"] == "Stalled" and e["type"] == "Warning" for e in cluster.emulator.events("uio"))
        )
        assert sandbox.world("inspera").writes == {}

        for secret in secrets:  # no restart: the next run reads them
            await cluster.apply(secret)
        await run_again(cluster)

    assert recovered(cluster)


async def test_a_secret_the_api_server_refuses_stalls_with_its_reason_and_the_next_run_reads_it(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox)
    await apply_all(cluster, inst, secrets)
    cluster.emulator.secret_read_refusal = 403  # the operator may no longer read Secrets here
    async with operator():
        assert "HTTP 403" in await stalled_for(cluster, "SecretUnreadable")
        assert cluster.condition("uio", "Reconciling")["status"] == "False"  # the run ended, no crash loop
        assert sandbox.world("inspera").writes == {}

        cluster.emulator.secret_read_refusal = None  # access given back: no restart needed
        await run_again(cluster)

    assert recovered(cluster)


async def test_invalid_spec_stalls_naming_the_field(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox)
    inst["spec"]["interval"] = "30s"
    await apply_all(cluster, inst, secrets)
    async with operator():
        await cluster.wait_for(lambda: cluster.condition("uio", "Stalled").get("status") == "True", timeout=30)
        await cluster.wait_for(lambda: any(e["type"] == "Warning" for e in cluster.emulator.events("uio")))
        stalled = cluster.condition("uio", "Stalled")
        assert stalled["reason"] == "InvalidSpec" and "interval" in stalled["message"]
        assert runs(cluster) == 0
        await cluster.patch("uio", {"spec": {"interval": "6h"}})
        await cluster.wait_for(lambda: idle_after(cluster, 1), timeout=30)
    assert cluster.condition("uio", "Stalled")["status"] == "False"


async def test_dry_run_plans_and_writes_nothing_upstream(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox)
    inst["spec"]["mode"] = "DryRun"
    await apply_all(cluster, inst, secrets)
    async with operator():
        await cluster.wait_for(lambda: idle_after(cluster, 1), timeout=30)
        await cluster.wait_for(lambda: any(e["reason"] == "DryRunPlan" for e in cluster.emulator.events("uio")))

    inspera = sandbox.world("inspera")
    assert inspera.writes == {} and inspera.write_log == []
    status = cluster.emulator.status("uio")
    assert status["mode"] == "DryRun"
    counts = status["pipelines"]["fs-inspera"]
    assert counts["created"] > 0  # what Apply would do
    assert status["planTotal"] == len(status["plan"]) >= counts["created"]
    assert {e["action"] for e in status["plan"]} <= {"create", "update"}
    assert all(e["key"].startswith("fs-inspera:") and e["fields"] for e in status["plan"])
    assert "progress" not in status  # DryRun keeps no progress either
    assert cluster.condition("uio", "Ready")["message"].startswith("DryRun: ")
    plan_event = next(e for e in cluster.emulator.events("uio") if e["reason"] == "DryRunPlan")
    assert plan_event["message"].startswith(f"Would create {counts['created']}")


async def test_status_is_written_only_through_the_status_subresource(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox)
    await apply_all(cluster, inst, secrets)
    async with operator():
        await cluster.wait_for(lambda: idle_after(cluster, 1), timeout=30)
        await cluster.patch("uio", {"spec": {"lookback": "24h"}})
        await cluster.wait_for(lambda: idle_after(cluster, 2), timeout=30)
        await cluster.patch("uio", {"spec": {"suspend": True}})
        await cluster.wait_for(lambda: cluster.condition("uio", "Reconciling").get("reason") == "Suspended")

    writes = [w for w in cluster.emulator.writes if w.resource == "institutions" and w.method in ("PATCH", "PUT")]
    status_writes = [w for w in writes if w.subresource == "status"]
    main_writes = [w for w in writes if w.subresource is None]
    assert len(status_writes) >= 5  # start + end of two runs, the suspension
    for w in main_writes:
        if isinstance(w.body, list):  # JSON patch (kopf's finalizer)
            assert not any(str(op.get("path", "")).startswith("/status") for op in w.body)
        else:
            assert "status" not in (w.body or {})
    for w in status_writes:
        assert set(w.body) == {"status"}
    # durable progress is checkpointed mid-run on its own, before the run's final status
    assert any(set(w.body["status"]) == {"progress"} for w in status_writes)


async def test_scheduled_run_follows_the_interval(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox)
    await apply_all(cluster, inst, secrets)
    async with operator():
        await cluster.wait_for(lambda: idle_after(cluster, 1), timeout=30)
        due = datetime.fromisoformat(cluster.emulator.status("uio")["nextRunTime"])
        await asyncio.sleep(5.5 * 3600)
        assert runs(cluster) == 1  # not before its time
        await asyncio.sleep((due - cluster.clock()).total_seconds())
        await cluster.wait_for(lambda: idle_after(cluster, 2), timeout=60)

    status = cluster.emulator.status("uio")
    second = datetime.fromisoformat(status["history"][0]["start"])
    assert due <= second <= due + timedelta(seconds=5)
    assert "Scheduled" not in status["conditions"][0]["message"]  # Ready holds the counts


async def test_deleting_an_institution_releases_it(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox)
    await apply_all(cluster, inst, secrets)
    async with operator():
        await cluster.wait_for(lambda: idle_after(cluster, 1), timeout=30)
        assert cluster.emulator.institution("uio")["metadata"]["finalizers"]
        await cluster.delete("uio")
        key = ("examsync.io/v1alpha1/institutions", "examsync", "uio")
        assert "examsync/uio" in metrics.institutions()
        await cluster.wait_for(lambda: cluster.emulator.objects[key].deleted, timeout=30)
        await cluster.wait_for(lambda: "examsync/uio" not in metrics.institutions())


async def test_an_interrupted_run_resumes_at_start_from_the_progress_in_status(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox)
    await apply_all(cluster, inst, secrets)
    now = cluster.clock()
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (now + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    watermark = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    # what a process killed mid-run leaves behind: Reconciling True, progress checkpointed
    await cluster.request(
        "PATCH",
        "/apis/examsync.io/v1alpha1/namespaces/examsync/institutions/uio/status",
        {
            "status": {
                "observedGeneration": 1,
                "lastRunTime": stamp,
                "nextRunTime": later,
                "conditions": [{"type": "Reconciling", "status": "True", "reason": "Progressing"}],
                "progress": {"pipelines": {"fs-inspera": {"watermark": watermark, "retry": []}}},
            }
        },
    )
    async with operator():
        await cluster.wait_for(lambda: idle_after(cluster, 1), timeout=30)

    status = cluster.emulator.status("uio")
    assert status["history"][0]["start"] < later  # resumed at once, not at nextRunTime
    # the FS list call started from the checkpointed watermark, not from the lookback window
    since = datetime.fromisoformat(sandbox.world("fs").list_queries[0]["sistEndret"])
    assert since is not None and now - timedelta(hours=2) < since <= now - timedelta(hours=1)
    assert status["progress"]["pipelines"]["fs-inspera"]["watermark"] > watermark


def _personal_values(sandbox: Sandbox) -> set[str]:
    """Every name, e-mail, phone, FEIDE id and national id number in the FS world."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in seed_no.PERSONAL_KEYS and isinstance(value, str) and len(value) > 4:
                    found.add(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(sandbox.world("fs").records)
    return found


async def test_unauthorized_upstream_stalls_and_no_personal_data_reaches_status_or_events(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox, clean=False)
    await apply_all(cluster, inst, secrets)
    async with operator():
        await cluster.wait_for(lambda: idle_after(cluster, 1), timeout=30)
        # a rotated FS password the operator was not given: 401, which retrying cannot fix
        sandbox.world("fs").credentials = {"someone-else": "x"}
        await cluster.patch("uio", {"metadata": {"annotations": {"examsync.io/requested-at": "2"}}})
        await cluster.wait_for(lambda: idle_after(cluster, 2), timeout=30)
        await cluster.wait_for(
            lambda: any(e["reason"] == "Stalled" for e in cluster.emulator.events("uio")), timeout=30
        )

    stalled = cluster.condition("uio", "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "Unauthorized")
    assert "fs-inspera" in stalled["message"] and "401" in stalled["message"]
    assert cluster.condition("uio", "Ready")["reason"] == "Unauthorized"
    assert cluster.emulator.status("uio")["history"][0]["result"] == "Stalled"

    personal = _personal_values(sandbox)
    assert len(personal) > 20  # the seed really holds people
    written = json.dumps([cluster.emulator.status("uio"), cluster.emulator.events("uio")], ensure_ascii=False)
    assert not [value for value in personal if value in written]
