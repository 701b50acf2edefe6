"""The --state file through `examsync sync`: the retry set never loses an id (Security rule 7),
and the file stays under 512 KiB without dropping a retry id or a pending create (rule 11)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from examsync.domain.fs import encode_id
from examsync.domain.wiseflow import assessor_key
from examsync.state import MAX_RETRY
from examsync_sandbox import seed_dk, seed_no
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators import fs as fs_sim
from examsync_sandbox.simulators import inspera as inspera_sim
from tests.support.sync_runs import sync, write_manifests

PIPELINE = "fs-inspera"


def state_of(path: Path, key: str) -> dict[str, object]:
    state: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))["institutions"][key]["pipelines"]
    return state


async def test_more_failed_ids_than_the_retry_set_holds_keep_the_waiting_ones_and_hold_the_watermark(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    fs: fs_sim.World = sandbox.world("fs")
    inspera: inspera_sim.World = sandbox.world("inspera")
    watermark = datetime.now(UTC) - timedelta(minutes=30)
    # a full retry set left by earlier trouble: ids FS lists no more (changed before the watermark)
    waiting = [encode_id("185", f"GML{n:04d}", "1", "SKR", 2026, "HØST") for n in range(MAX_RETRY)]
    state = tmp_path / "state.json"
    state.write_text(
        json.dumps(
            {
                "version": 1,
                "institutions": {
                    "examsync/uio": {"pipelines": {PIPELINE: {"watermark": watermark.isoformat(), "retry": waiting}}}
                },
            }
        ),
        encoding="utf-8",
    )
    # five assessments change now; FS answers no detail at all for the moment
    new = [seed_no.CASES[f"uio-new-{i}"] for i in range(5)]
    for fs_id in new:
        fs.touch(fs_id)
    sandbox.server("fs").faults.always = {"GET /eksamen/INSPERA/": "503"}
    manifests = write_manifests(sandbox, tmp_path / "m.yaml", ["uio"])

    down = await sync("-f", str(manifests), "--state", str(state))
    assert down.code == 1
    kept = state_of(state, "examsync/uio")[PIPELINE]
    assert isinstance(kept, dict)
    assert kept["retry"] == waiting  # every waiting id, in its place; the new ones left out...
    assert datetime.fromisoformat(kept["watermark"]) == watermark  # ...so the watermark stays

    sandbox.server("fs").faults.always = {}
    up = await sync("-f", str(manifests), "--state", str(state))
    assert up.code == 0
    assert all(len(inspera.by_external_id(fs_id)) == 1 for fs_id in new)  # listed again, and created
    assert state_of(state, "examsync/uio")[PIPELINE]["retry"] == []  # type: ignore[index]


async def test_the_state_file_stays_under_512_kib_keeping_retry_ids_pending_creates_and_active_markers(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    secret = seed_dk.CLIENT_SECRET.encode()
    spring = seed_dk.CASES["spring-activated"]
    active_marker = assessor_key(secret, spring, seed_dk.CASES.users["anders"])
    closed = [seed_dk.CASES["concluded"], *range(100_000, 130_000)]  # concluded, or long gone
    digests = {assessor_key(secret, flow, 7): str(flow) for flow in closed} | {active_marker: str(spring)}
    pending = {"RkFLRQ==": {"title": "Et flow", "subtitle": "FAKE1", "since": datetime.now(UTC).isoformat()}}
    retry = [f"id-{n}" for n in range(MAX_RETRY)]
    state = tmp_path / "state.json"
    state.write_text(
        json.dumps(
            {
                "version": 1,
                "institutions": {
                    "examsync/ucx": {
                        "pipelines": {
                            "praktikportalen-wiseflow": {"digests": digests},
                            "fs-wiseflow": {"pending": pending, "retry": retry},
                        }
                    }
                },
            }
        ),
        encoding="utf-8",
    )
    assert state.stat().st_size > 2 * 512 * 1024

    await sync("-f", str(write_manifests(sandbox, tmp_path / "m.yaml", ["ucx"])), "--state", str(state))

    assert state.stat().st_size < 512 * 1024
    pipelines = state_of(state, "examsync/ucx")
    assert isinstance(pipelines, dict)
    assert pipelines["fs-wiseflow"]["retry"] == retry
    assert set(pipelines["fs-wiseflow"]["pending"]) == set(pending)
    kept = pipelines["praktikportalen-wiseflow"]["digests"]
    assert kept[active_marker] == str(spring)
    assert not [k for k, v in kept.items() if k.startswith("assessor") and int(v) in closed]
