"""Upstream error text (Security rule 9), through `examsync sync`: a failure keeps the upstream's
code and its message, with e-mails, long digit runs and the names of the item's own people masked,
and no personal data reaches the report, the logs, the audit records, Humio or Slack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from examsync_sandbox import seed_dk
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators import fs as fs_sim
from examsync_sandbox.simulators import praktikportalen as pp_sim
from tests.support.sync_runs import sync, write_manifests

GRADER = {"navn": "Kari Nordmann", "epost": "kari.nordmann@uio.no", "fodselsnummer": "01019012345"}
RESPONSIBLE = {"feideId": "ola.bergstad@ntnu.no", "navn": "Ola Bergstad", "epost": "ola.bergstad@ntnu.no"}
PERSONAL = ("Kari", "Nordmann", "kari.nordmann@uio.no", "01019012345", "Bergstad", "ola.bergstad@ntnu.no")

INSPERA_REFUSAL = {  # Inspera's shape: {error, message}
    "error": "E4711",
    "message": "Title refused by the naming policy: grader Kari Nordmann (kari.nordmann@uio.no, 01019012345) "
    "may not own it",
}
WISEFLOW_REFUSAL = {  # WISEflow's envelope: its `code` is an integer (the HTTP status), so no code is kept
    "success": False,
    "data": None,
    "error": {
        "code": 400,
        "message": "Title refused by the naming policy for Ola Bergstad",
        "errors": [{"reason": "managers", "message": "ola.bergstad@ntnu.no may not manage it"}],
    },
}


def with_person(fs: fs_sim.World, institution: str, person: dict[str, str], where: str) -> None:
    """Every record of `institution` gets `person`, so whichever item fails, it is one of its people."""
    for record in fs.records.values():
        if record.get("institusjonsnr") != institution:
            continue
        if where == "grader":
            record["kommisjoner"] = [*record.get("kommisjoner", []), {"kommisjonsnr": 9, "sensorer": [person]}]
        else:
            record["eksamensansvarlige"] = [*record["eksamensansvarlige"], person]


def failed(report: dict[str, Any]) -> list[str]:
    return [f["message"] for f in report["failures"] if ":" in f["key"]]


async def test_a_refusal_reaches_the_report_with_its_code_and_masked_message_and_no_personal_data(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    fs: fs_sim.World = sandbox.world("fs")
    with_person(fs, "185", GRADER, "grader")
    with_person(fs, "194", RESPONSIBLE, "responsible")
    inspera, wiseflow = sandbox.server("inspera").faults, sandbox.server("wiseflow").faults
    inspera.answers["naming"] = (400, INSPERA_REFUSAL)
    inspera.once = {"POST /v1/test$": ["answer:naming"]}
    wiseflow.answers["naming"] = (400, WISEFLOW_REFUSAL)
    wiseflow.once = {"POST /license/create/flow": ["answer:naming"]}

    result = await sync("-f", str(write_manifests(sandbox, tmp_path / "m.yaml", ["uio", "ntnu"])))

    (uio,) = [m for m in failed(result.institutions["uio"]) if "naming policy" in m]
    assert uio.startswith("inspera create_test: HTTP 400 Bad Request: Title refused by the naming policy")
    assert uio.endswith("may not own it (E4711)")
    (ntnu,) = [m for m in failed(result.institutions["ntnu"]) if "naming policy" in m]
    assert ntnu == (
        "wiseflow create flow: HTTP 400 Bad Request: Title refused by the naming policy for ***; "
        "managers: *** may not manage it"
    )
    assert any(r["errorMessage"] == uio for r in result.audit())

    humio, slack = sandbox.world("humio"), sandbox.world("slack")
    assert any(r.get("errorMessage") == uio for r in humio.records)
    assert slack.messages
    outputs = {
        "report": result.out,
        "logs and audit records": result.err,
        "humio": json.dumps(humio.requests, ensure_ascii=False),
        "slack": json.dumps(slack.messages, ensure_ascii=False),
    }
    leaks = {where: [p for p in PERSONAL if p in text] for where, text in outputs.items()}
    assert leaks == {where: [] for where in outputs}


async def test_a_refused_supervisor_write_is_reported_with_the_supervisor_masked(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    karen = seed_dk.supervisor("karen")
    pp: pp_sim.World = sandbox.world("praktikportalen")
    for period in pp.licences[seed_dk.PRAKTIKPORTAL_ID].values():  # Karen supervises in every period
        if not any(s["praktikportalId"] == karen["praktikportalId"] for s in period["supervisors"]):
            period["supervisors"].append(dict(karen))
    faults = sandbox.server("wiseflow").faults
    faults.answers["exists"] = (
        409,
        {
            "success": False,
            "data": None,
            "error": {"code": 409, "message": "Karen Lund (karen.lund@skole.dk, TS-10068) has a user already"},
        },
    )
    faults.always = {"POST /license/user": "answer:exists"}

    result = await sync("-f", str(write_manifests(sandbox, tmp_path / "m.yaml", ["ucx"])))

    messages = [f["message"] for f in result.failures("ucx")]
    refused = [m for m in messages if "has a user already" in m]
    assert refused
    assert all("wiseflow write user: HTTP 409 Conflict: *** *** *** ***) has a user already" in m for m in refused)
    audit = [r["errorMessage"] for r in result.audit() if r.get("errorMessage")]
    assert any("has a user already" in m for m in audit)
    for personal in ("Karen", "Lund", "karen.lund@skole.dk", "TS-10068"):
        assert personal not in result.out and personal not in result.err
