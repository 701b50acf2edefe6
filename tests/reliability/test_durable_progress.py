"""Progress survives a long pause: after more than `lookback` without a run, the next run asks FS
for changes since the watermark minus the overlap (not since the lookback) and misses nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

from examsync.pipelines.fs_source import WATERMARK_OVERLAP
from examsync_sandbox.simulators import fs as fs_sim
from examsync_sandbox.simulators import inspera as inspera_sim
from tests.support.fleet import PIPELINE, Fleet, NoSandbox


async def test_changes_made_while_nothing_ran_for_longer_than_lookback_are_all_applied() -> None:
    async with NoSandbox() as sb:
        fs: fs_sim.World = sb.world("fs")
        inspera: inspera_sim.World = sb.world("inspera")
        fleet = Fleet.of(sb)
        fleet.institutions = {"uio": fleet.institutions["uio"]}
        lookback = fleet.institutions["uio"].spec.lookback_delta

        t0 = datetime.now().astimezone()
        await fleet.run(now=t0)
        assert fleet.converged()
        assert fleet.states["uio"].pipeline(PIPELINE).watermark == t0

        # nothing runs for five days (lookback is 72 h); FS changes meanwhile
        t1 = t0 + timedelta(days=5)
        assert t1 - lookback > t0 + timedelta(days=1)
        synced = sorted(fleet.expected())
        early, late, slow_commit = synced[0], synced[1], synced[2]
        fs.touch(early, when=t0 + timedelta(days=1), emnetittel="Endret dag 1")
        fs.touch(late, when=t0 + timedelta(days=4), varighetMinutter=300, slutt=None)
        # committed with a time just before the last run's start, but not visible to it
        fs.touch(slow_commit, when=t0 - timedelta(minutes=10), emnetittel="Sent lagret")
        new = dict(fs.records[early], emnekode="NYTT1000", emnetittel="Nytt emne")
        new.pop("id")
        new_id = fs.add(new, changed=t0 + timedelta(days=2))
        # before the overlap: a run that started at t0 already saw it
        assert fs.records[synced[3]]["sistEndret"] < (t0 - WATERMARK_OVERLAP).isoformat()

        queries = len(fs.list_queries)
        report = (await fleet.run(now=t1))["uio"].pipelines[PIPELINE]
        assert len(fs.list_queries) == queries + 1
        cutoff = datetime.fromisoformat(fs.list_queries[-1]["sistEndret"])
        assert abs((cutoff - (t0 - WATERMARK_OVERLAP)).total_seconds()) < 1
        assert report.counts.created == 1
        assert report.counts.updated == 3

        assert inspera.by_external_id(early)[0]["title"] == "Endret dag 1"
        assert inspera.by_external_id(late)[0]["duration"] == 300
        assert inspera.by_external_id(slow_commit)[0]["title"] == "Sent lagret"
        assert len(inspera.by_external_id(new_id)) == 1
        assert new_id in fleet.expected()
        assert fleet.converged()
        assert fleet.states["uio"].pipeline(PIPELINE).watermark == t1
