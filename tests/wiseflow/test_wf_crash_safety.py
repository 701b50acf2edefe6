"""fs-wiseflow never makes a second flow for one assessment when create and link come apart."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import yaml
from wf_helpers import FSWF, run

from examsync.adapters.wiseflow.simulator import Flow, World
from examsync.domain.wiseflow import fs_reference
from examsync.sandbox import seed_nowf
from examsync.sandbox.seed_nowf import CASES
from examsync.sandbox.server import Sandbox

NEW_CASES = ("ntnu-new", "ntnu-new-one-not-user", "ntnu-missing-responsible")


def wf(sb: Sandbox) -> World:
    world: World = sb.world("wiseflow")
    return world


def assert_one_linked_flow_each(sb: Sandbox) -> None:
    world = wf(sb)
    for case in NEW_CASES:
        record = sb.world("fs").records[CASES[case]]
        titled = world.flows_titled(record["emnetittel"])
        assert len(titled) == 1, f"{case}: {len(titled)} flows"
        assert titled[0].references() == [fs_reference(CASES[case])]


def fail_first_link(sb: Sandbox, action: str) -> list[Flow]:
    """Arm a one-off fault on the link call of the first flow created."""
    created: list[Flow] = []
    faults = sb.server("wiseflow").faults

    def hook(flow: Flow) -> None:
        if not created:
            faults.once[f"POST /flows/{flow.id}/external-sources$"] = [action]
        created.append(flow)

    wf(sb).on_flow_created = hook
    return created


async def test_link_refused_once_is_linked_on_the_next_run(sandbox: Sandbox) -> None:
    created = fail_first_link(sandbox, "400")
    first = await run(sandbox, "ntnu")
    orphan = created[0]
    assert orphan.references() == []  # the create went through, the link did not
    assert first.counts(FSWF)["failed"] == 2  # that item and the seeded conflict
    pending = first.state.pipeline(FSWF).pending
    assert len(pending) == 1
    [fs_id] = pending
    second = await run(sandbox, "ntnu", first.state)
    assert orphan.references() == [fs_reference(fs_id)]
    assert second.state.pipeline(FSWF).pending == {}
    rec = next(r for r in second.audit if r["vurdId"] == fs_id)
    assert (rec["action"], rec["testId"]) == ("created", str(orphan.id))
    # the adopted flow also got the dates its create never set
    assert orphan.participation is not None and orphan.marking is not None
    assert_one_linked_flow_each(sandbox)


async def test_link_stored_but_answer_lost_counts_as_linked(sandbox: Sandbox) -> None:
    fail_first_link(sandbox, "commit-then-reset")
    first = await run(sandbox, "ntnu")
    assert first.counts(FSWF)["created"] == 3 and first.state.pipeline(FSWF).pending == {}
    assert_one_linked_flow_each(sandbox)


async def test_create_refused_leaves_no_pending_create(sandbox: Sandbox) -> None:
    sandbox.server("wiseflow").faults.once["POST /license/create/flow$"] = ["400"]
    first = await run(sandbox, "ntnu")
    assert first.counts(FSWF)["failed"] == 2  # that item and the seeded conflict
    # certainly not created: nothing recorded that a later run could adopt a same-titled flow by
    assert first.state.pipeline(FSWF).pending == {}
    second = await run(sandbox, "ntnu", first.state)
    assert second.counts(FSWF)["created"] == 1
    assert_one_linked_flow_each(sandbox)


async def test_create_stored_but_answer_lost_is_not_sent_again(sandbox: Sandbox) -> None:
    sandbox.server("wiseflow").faults.once["POST /license/create/flow$"] = ["commit-then-reset"]
    first = await run(sandbox, "ntnu")
    assert sandbox.server("wiseflow").count("POST", "/license/create/flow") == 3  # not resent
    assert len(first.state.pipeline(FSWF).pending) == 1
    await run(sandbox, "ntnu", first.state)
    assert sandbox.server("wiseflow").count("POST", "/license/create/flow") == 3
    assert_one_linked_flow_each(sandbox)


def _write_manifests(sb: Sandbox, path: Path) -> None:
    path.write_text(yaml.safe_dump_all(seed_nowf.manifests(sb), sort_keys=False), encoding="utf-8")


async def _sync(manifest: Path, state: Path) -> asyncio.subprocess.Process:
    """`examsync sync -f FILE --state FILE` as a child process (the sandbox stays in this one)."""
    env = {**os.environ, "EXAMSYNC_RETRY_BASE_DELAY": "0.01"}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "examsync",
        "sync",
        "-f",
        str(manifest),
        "--state",
        str(state),
        "--output",
        "json",
        "--allow-loopback",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )


async def test_killed_between_create_and_link_links_on_the_next_run(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest, state = tmp_path / "ntnu.yaml", tmp_path / "state.json"
    _write_manifests(sandbox, manifest)
    killed: list[Flow] = []
    proc: asyncio.subprocess.Process | None = None

    def kill_on_create(flow: Flow) -> None:
        # the flow is stored; the process dies before it can read the answer and link it
        if not killed and proc is not None:
            os.kill(proc.pid, signal.SIGKILL)
        killed.append(flow)

    wf(sandbox).on_flow_created = kill_on_create
    proc = await _sync(manifest, state)
    await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == -signal.SIGKILL
    assert killed and all(f.references() == [] for f in killed)
    saved = json.loads(state.read_text(encoding="utf-8"))
    pending = saved["institutions"]["examsync/ntnu"]["pipelines"][FSWF]["pending"]
    assert len(pending) >= 1  # recorded before the create was sent

    wf(sandbox).on_flow_created = None
    again = await _sync(manifest, state)
    out, _ = await asyncio.wait_for(again.communicate(), 60)
    assert again.returncode == 1  # the seeded Conflict still fails
    report = json.loads(out)["institutions"][0]
    assert report["pipelines"][FSWF]["created"] >= 1
    assert_one_linked_flow_each(sandbox)
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert saved["institutions"]["examsync/ntnu"]["pipelines"][FSWF]["pending"] == {}
