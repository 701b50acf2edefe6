"""/metrics of a running `examsync run` process, scraped over HTTP before, after and without a run.

The operator is a separate process (real time, no looptime) logged in through a kubeconfig that
points at the emulator; the sandbox's FS and Inspera serve it on loopback.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client.samples import Sample

from examsync_sandbox.server import Sandbox
from tests.support.kube_harness import (
    INSTITUTIONS,
    NAMESPACE,
    Cluster,
    OperatorProcess,
    apply_all,
    idle_after,
    scrape_until,
    select,
    total,
    uio,
)

INSTITUTION = f"{NAMESPACE}/uio"
PER_INSTITUTION = (
    "examsync_runs_total",
    "examsync_items_total",
    "examsync_institution_condition",
    "examsync_last_success_timestamp_seconds",
)


async def test_metrics_endpoint_follows_runs_and_deletion(cluster: Cluster, sandbox: Sandbox, tmp_path: Path) -> None:
    inst, secrets = uio(sandbox)
    async with OperatorProcess(cluster.url, tmp_path) as proc:
        # up, no Institution yet: nothing of uio, no FS call counted
        before = await scrape_until(cluster.http, proc, lambda s: bool(select(s, "examsync_build_info")))
        for name in PER_INSTITUTION:
            assert total(before, name, institution=INSTITUTION) == 0, name
        assert total(before, "examsync_upstream_requests_total", system="fs") == 0

        await apply_all(cluster, inst, secrets)
        await cluster.wait_for(lambda: idle_after(cluster, 1), timeout=60)
        counts = cluster.emulator.status("uio")["pipelines"]["fs-inspera"]
        assert counts["created"] > 0 and counts["failed"] == 0

        def ran(samples: list[Sample]) -> bool:
            return total(samples, "examsync_runs_total", institution=INSTITUTION) >= 1 and bool(
                select(samples, "examsync_institution_condition", institution=INSTITUTION, type="Ready", status="True")
            )

        after = await scrape_until(cluster.http, proc, ran)
        runs = {"institution": INSTITUTION, "pipeline": "fs-inspera"}
        assert total(after, "examsync_runs_total", **runs, result="succeeded") == 1
        assert select(after, "examsync_runs_total", **runs, result="failed")  # present, so increase() works
        assert total(after, "examsync_runs_total", **runs, result="failed") == 0
        assert total(after, "examsync_items_total", **runs, action="created") == counts["created"]
        assert total(after, "examsync_items_total", **runs, action="unchanged") == counts["unchanged"]
        ready = {
            s.labels["status"]: s.value
            for s in select(after, "examsync_institution_condition", institution=INSTITUTION, type="Ready")
        }
        assert ready == {"True": 1.0, "False": 0.0, "Unknown": 0.0}
        reconciling = select(
            after, "examsync_institution_condition", institution=INSTITUTION, type="Reconciling", status="False"
        )
        assert [s.value for s in reconciling] == [1.0]
        assert total(after, "examsync_upstream_requests_total", system="fs", operation="list", code="200") >= 1
        assert total(after, "examsync_upstream_requests_total", system="fs") > 1  # the list and the details
        assert total(after, "examsync_upstream_requests_total", system="inspera") > 0
        assert total(after, "examsync_last_success_timestamp_seconds", **runs) > 0
        # label values stay bounded: no item id, no person
        fs_ids = set(sandbox.world("fs").records)
        assert not any(set(s.labels.values()) & fs_ids for s in after)

        await cluster.delete("uio")
        key = (INSTITUTIONS, NAMESPACE, "uio")
        await cluster.wait_for(lambda: cluster.emulator.objects[key].deleted, timeout=30)
        gone = await scrape_until(
            cluster.http,
            proc,
            lambda s: not select(s, "examsync_institution_condition", institution=INSTITUTION),
        )
        assert not select(gone, "examsync_runs_total", institution=INSTITUTION)
        assert not select(gone, "examsync_items_total", institution=INSTITUTION)
        # what is not per Institution stays
        assert total(gone, "examsync_upstream_requests_total", system="fs") > 1
