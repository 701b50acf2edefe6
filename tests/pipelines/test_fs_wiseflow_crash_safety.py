"""fs-wiseflow never makes a second flow for one assessment when create and link come apart."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import yaml

from examsync.domain.wiseflow import ACTIVE_STATES, fs_reference
from examsync_sandbox import seed_nowf
from examsync_sandbox.seed_nowf import CASES
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators.wiseflow import Exchange, Flow, World
from tests.support.wiseflow_runs import FSWF, run

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


def adoption_searches(exchanges: list[Exchange]) -> list[dict[str, object]]:
    """The flow searches that looked for a pending create's flow: by title, open, created since."""
    found = []
    for x in exchanges:
        if x.method == "POST" and x.path == "/flows/search":
            metadata = json.loads(x.body).get("metadata", {})
            if "createdAt" in metadata:
                found.append(metadata)
    return found


def assert_adopted_by_creation_time(exchanges: list[Exchange], flow: Flow) -> None:
    """The flow was found by the search's createdAt filter, with no per-flow look-up."""
    [search] = [s for s in adoption_searches(exchanges) if s["title"] == flow.title]
    assert search["states"] == [s.value for s in ACTIVE_STATES] and search["subtitle"] == flow.subtitle
    assert search["createdAt"]["from"] <= flow.created  # type: ignore[index]
    # no basic-flow read of any flow and no read of the adopted flow's sources; other flows' metadata
    # may be read for their own updates (a run killed early leaves those to the next run)
    looked_up = [
        x.path
        for x in exchanges
        if x.method == "GET" and (x.path.startswith("/flow/") or x.path.startswith(f"/flows/{flow.id}/"))
    ]
    assert looked_up == []


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


async def test_link_refused_once_is_linked_on_the_next_run(sandbox: Sandbox, wiseflow_contract: list[Exchange]) -> None:
    created = fail_first_link(sandbox, "400")
    first = await run(sandbox, "ntnu")
    orphan = created[0]
    assert orphan.references() == []  # the create went through, the link did not
    assert first.counts(FSWF)["failed"] == 2  # that item and the seeded conflict
    pending = first.state.pipeline(FSWF).pending
    assert len(pending) == 1
    [fs_id] = pending
    wiseflow_contract.clear()
    second = await run(sandbox, "ntnu", first.state)
    assert_adopted_by_creation_time(wiseflow_contract, orphan)
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


async def test_create_stored_but_answer_lost_is_not_sent_again(
    sandbox: Sandbox, wiseflow_contract: list[Exchange]
) -> None:
    sandbox.server("wiseflow").faults.once["POST /license/create/flow$"] = ["commit-then-reset"]
    first = await run(sandbox, "ntnu")
    assert sandbox.server("wiseflow").count("POST", "/license/create/flow") == 3  # not resent
    [orphan] = [f for f in wf(sandbox).flows.values() if f.licence == seed_nowf.LICENCE and not f.references()]
    assert len(first.state.pipeline(FSWF).pending) == 1
    wiseflow_contract.clear()
    await run(sandbox, "ntnu", first.state)
    assert sandbox.server("wiseflow").count("POST", "/license/create/flow") == 3
    assert_adopted_by_creation_time(wiseflow_contract, orphan)
    assert_one_linked_flow_each(sandbox)


async def test_only_a_flow_created_since_the_pending_create_is_adopted(
    sandbox: Sandbox, wiseflow_contract: list[Exchange]
) -> None:
    """A same-titled flow made by hand long before (a copy a manager keeps) is never adopted."""
    record = sandbox.world("fs").records[CASES["ntnu-new"]]
    older = wf(sandbox).add_flow(
        record["emnetittel"],
        record["emnekode"],
        created=1_700_000_000,
        managers=CASES.managers[:1],
        licence=seed_nowf.LICENCE,
    )
    faults = sandbox.server("wiseflow").faults

    def hook(flow: Flow) -> None:
        if flow.title == older.title:
            faults.once[f"POST /flows/{flow.id}/external-sources$"] = ["400"]

    wf(sandbox).on_flow_created = hook
    first = await run(sandbox, "ntnu")
    [orphan] = [f for f in wf(sandbox).flows_titled(older.title) if f is not older]
    wiseflow_contract.clear()
    await run(sandbox, "ntnu", first.state)
    assert orphan.references() == [fs_reference(CASES["ntnu-new"])] and older.references() == []
    assert_adopted_by_creation_time(wiseflow_contract, orphan)


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


async def test_killed_between_create_and_link_links_on_the_next_run(
    sandbox: Sandbox, tmp_path: Path, wiseflow_contract: list[Exchange]
) -> None:
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
    wiseflow_contract.clear()
    proc = await _sync(manifest, state)
    await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == -signal.SIGKILL
    assert killed and all(f.references() == [] for f in killed)
    saved = json.loads(state.read_text(encoding="utf-8"))
    pending = saved["institutions"]["examsync/ntnu"]["pipelines"][FSWF]["pending"]
    assert len(pending) >= 1  # recorded before the create was sent

    wf(sandbox).on_flow_created = None
    wiseflow_contract.clear()
    again = await _sync(manifest, state)
    out, _ = await asyncio.wait_for(again.communicate(), 60)
    assert again.returncode == 1  # the seeded Conflict still fails
    report = json.loads(out)["institutions"][0]
    assert report["pipelines"][FSWF]["created"] >= 1
    assert_one_linked_flow_each(sandbox)
    for flow in killed[:1]:  # the flow whose create answer the killed process never read
        assert_adopted_by_creation_time(wiseflow_contract, flow)
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert saved["institutions"]["examsync/ntnu"]["pipelines"][FSWF]["pending"] == {}
