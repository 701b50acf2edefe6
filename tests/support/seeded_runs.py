"""Run one seeded sandbox Institution once, as the operator would, capturing its audit records."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from examsync.api.spec import parse_institution
from examsync.credentials import StaticSecrets
from examsync.pipelines.runner import RunOptions, run_institution
from examsync.report import InstitutionReport
from examsync.state import InstitutionState
from examsync_sandbox.server import Sandbox


async def run_seeded(
    sb: Sandbox,
    name: str,
    state: InstitutionState | None = None,
    *,
    spec_changes: Callable[[dict[str, Any]], None] | None = None,
    secret_changes: dict[str, dict[str, str]] | None = None,
    **options: Any,
) -> tuple[InstitutionReport, InstitutionState, list[dict[str, Any]]]:
    """`name`'s report, state after the run and audit records as their log lines have them (its spec
    or Secrets optionally changed)."""
    institutions, secrets = sb.manifests_by_name()
    manifest = copy.deepcopy(institutions[name])
    if spec_changes is not None:
        spec_changes(manifest["spec"])
    secrets.update(secret_changes or {})
    inst = parse_institution(manifest)
    audit: list[dict[str, Any]] = []
    options.setdefault("audit", lambda record: audit.append(record.as_json()))
    report, new_state = await run_institution(
        inst.metadata.name,
        inst.metadata.namespace,
        inst.spec,
        StaticSecrets(secrets),
        state or InstitutionState(),
        RunOptions(**options),
    )
    return report, new_state, audit
