"""Paging within bounds (Security rule 4): a server ignoring `offset` fails the listing instead of
being read again and again (or silently read short), through `examsync sync`."""

from __future__ import annotations

from pathlib import Path

from examsync_sandbox import seed_dk
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators import wiseflow as wf_sim
from tests.support.sync_runs import sync, write_manifests


async def test_a_server_ignoring_offset_fails_the_listing_and_the_other_runs_go_on(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    world: wf_sim.World = sandbox.world("wiseflow")
    for n in range(120):  # more active flows than one page holds
        world.add_flow(f"Eksamen {n}", "EX", licence=seed_dk.LICENCE)
    sandbox.server("wiseflow").faults.always = {"POST /flows/search": "ignore-offset"}
    result = await sync("-f", str(write_manifests(sandbox, tmp_path / "m.yaml", ["ucx", "uio"])))

    assert result.code == 1
    source = {f["key"]: f for f in result.failures("ucx")}["praktikportalen-wiseflow"]
    assert source["reason"] == "UpstreamError"
    assert "brought nothing new" in source["message"]
    assert sandbox.server("wiseflow").calls["POST /flows/search"] == 2  # the first page, then the same again
    assert result.institutions["uio"]["pipelines"]["fs-inspera"]["created"] > 0
