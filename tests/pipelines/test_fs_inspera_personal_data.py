"""No seeded person's data reaches logs, audit records or reports of fs-inspera runs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from examsync.audit import AuditRecord
from examsync.logs import setup_logging
from examsync.state import InstitutionState
from examsync_sandbox import seed_no
from examsync_sandbox.server import Sandbox
from tests.support.fs_inspera_runs import PIPELINE, run


def _personal_values(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in seed_no.PERSONAL_KEYS and isinstance(value, str):
                yield value
            else:
                yield from _personal_values(value)
    elif isinstance(node, list):
        for item in node:
            yield from _personal_values(item)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    setup_logging("DEBUG", stream)
    try:
        yield stream
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


async def test_no_personal_data_in_logs_audit_or_reports(sandbox: Sandbox, log_stream: io.StringIO) -> None:
    fs_records = list(sandbox.world("fs").records.values())
    people = set(_personal_values(fs_records)) | set(sandbox.world("inspera").users)
    # the seed is meaningful: names, e-mails, phones, FEIDE ids and identity numbers are all there
    assert any(len(v) == 11 and v.isdigit() for v in people)
    assert any(v.startswith("+47") for v in people)
    assert any(" " in v for v in people) and any("@" in v for v in people)
    assert len(people) > 100

    outputs: list[str] = []
    for name in ("uio", "uib"):
        audit: list[dict[str, Any]] = []

        def both(record: AuditRecord, sink: list[dict[str, Any]] = audit) -> None:
            sink.append(record.as_json())
            logging.getLogger("examsync.audit").info("audit", extra={"audit": record.as_json()})

        first = await run(sandbox, name, audit=both)
        dry = await run(sandbox, name, dry_run=True, audit=both)
        # a failing run too: error messages are where values most easily leak
        broken = await run(
            sandbox,
            name,
            InstitutionState(),
            secret_changes={f"{name}-fs": {"username": "x", "password": "y"}},
            audit=both,
        )
        for result in (first, dry, broken):
            outputs.append(json.dumps(result.report.as_json(), ensure_ascii=False))
            outputs.append(result.report.summary())
            outputs.append(json.dumps(result.state.model_dump(mode="json"), ensure_ascii=False))
            outputs.extend(f.message for f in result.report.failures())
        outputs.append(json.dumps(audit, ensure_ascii=False, default=str))
        assert any(r["moduleId"] == PIPELINE for r in audit)

    logs = log_stream.getvalue()
    assert '"logger": "examsync.audit"' in logs  # the audit records did go through the log stream
    text = logs + "\n".join(outputs)
    leaked = sorted(v for v in people if v in text)
    assert leaked == [], f"{len(leaked)} personal values leaked"
