"""Durable progress across an operator restart: stopped for longer than `lookback`, FS changed
meanwhile, every change is applied afterwards, because FS is asked from the watermark in status.

Wall-clock time is the operator's injected clock (OperatorConfig.now): the restarted operator's
clock runs `DOWNTIME` ahead of the first one's; looptime fast-forwards the timers.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta

import pytest

from examsync.api.spec import parse_duration
from examsync.pipelines.fs_source import WATERMARK_OVERLAP
from examsync_sandbox import seed_no
from examsync_sandbox.server import Sandbox
from tests.support.kube_harness import Cluster, OperatorFactory, apply_all, idle_after, uio

pytestmark = pytest.mark.looptime

DOWNTIME = timedelta(hours=80)


async def test_restart_after_more_than_lookback_applies_every_change_made_while_stopped(
    cluster: Cluster, operator: OperatorFactory, sandbox: Sandbox
) -> None:
    inst, secrets = uio(sandbox)
    lookback = parse_duration(inst["spec"]["lookback"])
    assert lookback + timedelta(hours=2) < DOWNTIME
    await apply_all(cluster, inst, secrets)
    fs, inspera = sandbox.world("fs"), sandbox.world("inspera")

    async with operator():
        await cluster.wait_for(lambda: idle_after(cluster, 1), timeout=60)
    first = cluster.emulator.status("uio")
    watermark = datetime.fromisoformat(first["progress"]["pipelines"]["fs-inspera"]["watermark"])
    assert watermark is not None
    queries_before = len(fs.list_queries)

    # while the operator is down: changes a minute after it stopped (in its first clock's time)
    changed_at = cluster.clock() + timedelta(minutes=1)
    updated_id = seed_no.CASES["uio-new"]
    fs.touch(updated_id, when=changed_at, emnetittel="Introduksjon til programmering (ny ordning)")
    quiet_id = seed_no.CASES["uio-quiet"]  # changed before the first run's window: never seen so far
    assert not inspera.by_external_id(quiet_id)
    fs.touch(quiet_id, when=changed_at)
    new = copy.deepcopy(fs.records[seed_no.CASES["uio-new-0"]])
    new.pop("id")
    new.update(emnekode="INF9999", emnetittel="Nytt emne lagt til mens operatoren sto")
    new_id = fs.add(new, changed=changed_at)
    assert not inspera.by_external_id(new_id)

    # restart, its clock beyond the lookback: now - lookback would lie after every change
    def later() -> datetime:
        return cluster.clock() + DOWNTIME

    restarted_at = later()
    assert changed_at < restarted_at - lookback
    async with operator(now=later):
        await cluster.wait_for(lambda: idle_after(cluster, 2), timeout=3600)

    status = cluster.emulator.status("uio")
    second = status["history"][0]
    second_start = datetime.fromisoformat(second["start"])
    assert second_start is not None and second_start >= restarted_at.replace(microsecond=0)  # whole seconds
    # FS was asked for changes since the watermark minus the overlap, not since now - lookback
    queries = fs.list_queries[queries_before:]
    assert len(queries) == 1
    cutoff = datetime.fromisoformat(queries[0]["sistEndret"])
    assert abs(cutoff - (watermark - WATERMARK_OVERLAP)) < timedelta(seconds=1)
    assert cutoff < changed_at < restarted_at - lookback

    # every change applied: the new and the never-seen assessments created, the changed one updated
    assert [t["title"] for t in inspera.by_external_id(new_id)] == ["Nytt emne lagt til mens operatoren sto"]
    assert [t["title"] for t in inspera.by_external_id(quiet_id)] == ["Arkeologi"]
    assert [t["title"] for t in inspera.by_external_id(updated_id)] == ["Introduksjon til programmering (ny ordning)"]
    counts = status["pipelines"]["fs-inspera"]
    assert (counts["created"], counts["updated"], counts["failed"]) == (2, 1, 0)
    assert second["result"] == "Succeeded"
    # the watermark moved to the second run's start
    moved = datetime.fromisoformat(status["progress"]["pipelines"]["fs-inspera"]["watermark"])
    assert moved is not None and moved >= restarted_at
