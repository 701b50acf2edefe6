"""State written before examsync followed WISEflow's OpenAPI description still loads, and an upgrade
creates and writes nothing twice.

The fixtures are a state file and a `status.progress` exactly as the earlier version wrote them (a
sandbox run of it: NTNU with a create whose link failed, so a pending create; UCX after its first
run). They load and are written back with the same content (the state file is now written
compact; an assessor marker's value becomes its flow's id once its flow is read); the flows the
earlier version documented with `praktikportalen:{n}` references are read as the same items.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from examsync.api.status import InstitutionStatus
from examsync.commands.sync import sync_manifests
from examsync.domain.wiseflow import LEGACY_PP_REFERENCE_PREFIX, FlowState, fs_reference, pp_reference
from examsync.kube.status import progress_dict, read_progress
from examsync.manifests import load_manifests
from examsync.state import StateFile
from examsync_sandbox import seed_nowf
from examsync_sandbox.seed_dk import CASES as DK_CASES
from examsync_sandbox.seed_dk import PERIODS
from examsync_sandbox.seed_nowf import CASES
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators.wiseflow import Exchange, World
from tests.support.wiseflow_runs import FSWF, PP, run, write_calls, writes

FIXTURES = Path(__file__).with_name("fixtures")
STATE_FILE = FIXTURES / "state-file-before-openapi.json"
PROGRESS = FIXTURES / "status-progress-before-openapi.json"


def wf(sb: Sandbox) -> World:
    world: World = sb.world("wiseflow")
    return world


def test_a_state_file_of_the_earlier_version_loads_and_is_written_back_the_same(tmp_path: Path) -> None:
    text = STATE_FILE.read_text(encoding="utf-8")
    state = StateFile.load(STATE_FILE)
    ntnu = state.institutions["examsync/ntnu"].pipeline(FSWF)
    [pending] = ntnu.pending.values()
    assert (pending.title, pending.subtitle) == ("Objektorientert programmering", "TDT4100")
    assert len(ntnu.retry) == 2
    ucx = state.institutions["examsync/ucx"].pipeline(PP)
    assert len([k for k in ucx.digests if k.startswith("assessor-v2:")]) == 6
    # the same content (the file is now written compact, within its size bound)
    assert json.loads(state.to_json()) == json.loads(text)


def test_a_status_progress_of_the_earlier_version_loads_and_is_written_back_the_same() -> None:
    raw = json.loads(PROGRESS.read_text(encoding="utf-8"))
    state = read_progress(InstitutionStatus.load({"progress": raw}))
    assert state.pipeline(PP).digests == raw["pipelines"][PP]["digests"]  # not the empty fallback
    assert progress_dict(state) == raw


def _sandbox_ids(text: str) -> str:
    """The fixture with its FS ids replaced by this sandbox's ids of the same courses (the ids
    hold the exam's year, which the sandbox takes from today's date)."""
    by_course = {base64.b64decode(i).decode().split("||")[1]: i for i in CASES.by_name.values()}
    for fs_id in {
        i
        for p in json.loads(text)["institutions"]["examsync/ntnu"]["pipelines"].values()
        for i in [*p["retry"], *p["pending"]]
    }:
        text = text.replace(fs_id, by_course[base64.b64decode(fs_id).decode().split("||")[1]])
    return text


async def test_a_pending_create_of_the_earlier_version_is_adopted_by_creation_time(
    sandbox: Sandbox, tmp_path: Path, wiseflow_contract: list[Exchange]
) -> None:
    state_path = tmp_path / "state.json"
    state_path.write_text(_sandbox_ids(STATE_FILE.read_text(encoding="utf-8")), encoding="utf-8")
    pending = StateFile.load(state_path).institutions["examsync/ntnu"].pipeline(FSWF).pending
    [(fs_id, create)] = pending.items()
    # what the earlier version's create left: the flow, unlinked, created just after it was recorded
    created_at = int(create.since.timestamp()) + 5
    orphan = wf(sandbox).add_flow(
        create.title, create.subtitle or "", created=created_at, managers=CASES.managers[:1], licence=seed_nowf.LICENCE
    )
    manifest = tmp_path / "ntnu.yaml"
    manifest.write_text("\n---\n".join(json.dumps(d) for d in seed_nowf.manifests(sandbox)), encoding="utf-8")

    result = await sync_manifests(load_manifests([manifest]), state_path=state_path)

    assert orphan.references() == [fs_reference(fs_id)]
    assert len(wf(sandbox).flows_titled(create.title)) == 1  # not created a second time
    assert StateFile.load(state_path).institutions["examsync/ntnu"].pipeline(FSWF).pending == {}
    [report] = result.reports
    assert report.pipelines[FSWF].counts.created >= 1  # the adopted flow counts as created
    creates = [json.loads(x.body)["title"] for x in wiseflow_contract if x.path == "/license/create/flow"]
    assert create.title not in creates
    adoption = [
        json.loads(x.body)["metadata"]
        for x in wiseflow_contract
        if x.path == "/flows/search" and "createdAt" in json.loads(x.body).get("metadata", {})
    ]
    assert [a["title"] for a in adoption] == [create.title]
    assert adoption[0]["createdAt"]["from"] <= created_at


async def test_the_state_the_new_version_writes_is_encoded_as_the_earlier_one(sandbox: Sandbox) -> None:
    first = await run(sandbox, "ucx")
    old = json.loads(PROGRESS.read_text(encoding="utf-8"))["pipelines"][PP]["digests"]
    new = progress_dict(first.state)["pipelines"][PP]["digests"]

    def shape(digests: dict[str, str]) -> set[tuple[str, int, int | str]]:
        """Kind, key length and value length; an assessor marker's value is its flow's id now
        (it was "added"), so that markers of flows no longer active can be dropped."""
        return {
            (k.split(":", 1)[0], len(k), "flow id" if k.startswith("assessor") else len(v)) for k, v in digests.items()
        }

    assert shape(new) == shape(old)
    markers = [v for k, v in new.items() if k.startswith("assessor")]
    assert markers and all(int(v) in wf(sandbox).flows for v in markers)


async def test_a_flow_still_carrying_the_earlier_reference_form_is_the_same_item(sandbox: Sandbox) -> None:
    world = wf(sandbox)
    third = world.flows[DK_CASES["third-started"]]
    legacy = LEGACY_PP_REFERENCE_PREFIX + PERIODS["third"]
    third.external_sources[0].reference = legacy  # as the earlier contract told managers to write it
    first = await run(sandbox, "ucx")
    key = f"{PP}:{third.id}:{PERIODS['third']}"
    assert [r["action"] for r in first.records(key) if r["submodule"] != "supervisor"] == ["updated"]
    assert world.source(third.id, legacy) is not None and world.source(third.id, legacy).syncs == ["done"]  # type: ignore[union-attr]

    # the manager adds the reference WISEflow accepts: still one item, no user or assessor written again
    world.link(third, pp_reference(PERIODS["third"]), "Praktik")
    before = write_calls(sandbox)
    second = await run(sandbox, "ucx", first.state)
    assert len([r for r in second.records(key) if r["submodule"] != "supervisor"]) == 1
    after = write_calls(sandbox)
    new_writes = {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}
    # only the outcome, told to the source that never had it
    assert new_writes == {f"POST /flows/{third.id}/external-sources/{pp_reference(PERIODS['third'])}/sync/done": 1}
    assert second.counts(PP)["supervisorsCreated"] == second.counts(PP)["assessorsAdded"] == 0
    count = writes(sandbox)
    await run(sandbox, "ucx", second.state)
    assert writes(sandbox) == count


async def test_flows_in_every_state_are_read_by_name(sandbox: Sandbox) -> None:
    """The search answers states by name; concluded and archived flows are left alone."""
    world = wf(sandbox)
    archived = world.add_flow(
        "Praktik 0 - 2024", state=FlowState.ARCHIVED, references=[pp_reference(PERIODS["spring"])], licence="ucx"
    )
    result = await run(sandbox, "ucx")
    assert not [r for r in result.audit if r["testId"] == str(archived.id)]
    assert archived.assessors == [] and archived.external_sources[0].syncs == []
