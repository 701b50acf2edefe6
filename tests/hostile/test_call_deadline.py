"""The call deadline (Security rule 3), through `examsync sync`: an answer that trickles one byte
at a time, each within the read timeout, is abandoned at the call's deadline and its connection
closed; the item fails and the run goes on."""

from __future__ import annotations

from pathlib import Path

from examsync_sandbox import seed_no
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators.serving import Faults
from tests.support.sync_runs import streams_ended, sync, write_manifests

# a short call budget so the test is quick; every read (a byte each 0.25 s) stays well within 5 s
CHILD_ENV = {"EXAMSYNC_CALL_DEADLINE": "6", "EXAMSYNC_HTTP_TIMEOUT": "5"}


async def test_a_trickling_answer_is_abandoned_at_the_call_deadline_and_its_connection_closed(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    fs: Faults = sandbox.server("fs").faults
    fs_id = seed_no.CASES["uio-new"]
    fs.trickle_interval, fs.trickle_seconds = 0.25, 600.0
    fs.always = {f"GET /eksamen/INSPERA/{fs_id}$": "trickle"}  # every attempt trickles
    # the run must end at all: without a deadline it would wait for the trickle's ten minutes
    result = await sync("-f", str(write_manifests(sandbox, tmp_path / "m.yaml", ["uio"])), env=CHILD_ENV, timeout=90)

    failure = {f["key"]: f for f in result.failures("uio")}[f"fs-inspera:{fs_id}"]
    assert failure["reason"] == "UpstreamError"
    assert "the call's deadline passed" in failure["message"]
    await streams_ended(fs)
    assert fs.streams and all(s.cut and 0 < s.sent < s.total for s in fs.streams)  # abandoned, closed
    assert result.institutions["uio"]["pipelines"]["fs-inspera"]["created"] > 0
