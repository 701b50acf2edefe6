"""Helpers for the WISEflow tests: run a seeded Institution against the sandbox, count writes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from examsync.pipelines.runner import RunOptions, run_institution
from examsync.report import InstitutionReport, PipelineReport
from examsync.sandbox.server import Sandbox
from examsync.secrets import StaticSecrets
from examsync.spec import parse_institution
from examsync.state import InstitutionState

PP = "praktikportalen-wiseflow"
FSWF = "fs-wiseflow"
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
READ_POSTS = ("POST /flows/search", "POST /oauth2/token")


class Run:
    def __init__(
        self, report: InstitutionReport, state: InstitutionState, audit: list[dict[str, Any]]
    ) -> None:
        self.report = report
        self.state = state
        self.audit = audit

    def pipeline(self, name: str) -> PipelineReport:
        return self.report.pipelines[name]

    def counts(self, name: str) -> dict[str, int]:
        return self.report.pipelines[name].counts

    def records(self, key: str) -> list[dict[str, Any]]:
        return [r for r in self.audit if r["key"] == key]


def manifests(sb: Sandbox) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]]]:
    return sb.manifests_by_name()


async def run(
    sb: Sandbox,
    name: str,
    state: InstitutionState | None = None,
    *,
    dry_run: bool = False,
    spec_changes: Callable[[dict[str, Any]], None] | None = None,
) -> Run:
    institutions, secrets = manifests(sb)
    doc = copy.deepcopy(institutions[name])
    if spec_changes is not None:
        spec_changes(doc["spec"])
    inst = parse_institution(doc)
    audit: list[dict[str, Any]] = []
    report, new_state = await run_institution(
        inst.metadata.name,
        inst.metadata.namespace,
        inst.spec,
        StaticSecrets(secrets),
        state or InstitutionState(),
        RunOptions(dry_run=dry_run, audit=audit.append),
    )
    return Run(report, new_state, audit)


def writes(sb: Sandbox, system: str = "wiseflow") -> int:
    """Requests that change something (the search and token POSTs only read)."""
    calls = sb.server(system).calls
    return sum(
        n for k, n in calls.items() if k.split(" ", 1)[0] in WRITE_METHODS and not k.startswith(READ_POSTS)
    )


def write_calls(sb: Sandbox, system: str = "wiseflow") -> dict[str, int]:
    calls = sb.server(system).calls
    return {
        k: n for k, n in calls.items() if k.split(" ", 1)[0] in WRITE_METHODS and not k.startswith(READ_POSTS)
    }
