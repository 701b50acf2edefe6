"""Helpers for the WISEflow tests: run a seeded Institution against the sandbox, count writes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from examsync.report import InstitutionReport, PipelineReport
from examsync.state import InstitutionState
from examsync_sandbox.server import Sandbox
from tests.support.seeded_runs import run_seeded

PP = "praktikportalen-wiseflow"
FSWF = "fs-wiseflow"
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
READ_POSTS = ("POST /flows/search", "POST /oauth2/token")


class Run:
    def __init__(self, report: InstitutionReport, state: InstitutionState, audit: list[dict[str, Any]]) -> None:
        self.report = report
        self.state = state
        self.audit = audit

    def pipeline(self, name: str) -> PipelineReport:
        return self.report.pipelines[name]

    def counts(self, name: str) -> dict[str, int]:
        return self.report.pipelines[name].counts.model_dump()

    def records(self, key: str) -> list[dict[str, Any]]:
        return [r for r in self.audit if r["key"] == key]


async def run(
    sb: Sandbox,
    name: str,
    state: InstitutionState | None = None,
    *,
    dry_run: bool = False,
    spec_changes: Callable[[dict[str, Any]], None] | None = None,
) -> Run:
    return Run(*await run_seeded(sb, name, state, dry_run=dry_run, spec_changes=spec_changes))


def writes(sb: Sandbox, system: str = "wiseflow") -> int:
    """Requests that change something (the search and token POSTs only read)."""
    calls = sb.server(system).calls
    return sum(n for k, n in calls.items() if k.split(" ", 1)[0] in WRITE_METHODS and not k.startswith(READ_POSTS))


def write_calls(sb: Sandbox, system: str = "wiseflow") -> dict[str, int]:
    calls = sb.server(system).calls
    return {k: n for k, n in calls.items() if k.split(" ", 1)[0] in WRITE_METHODS and not k.startswith(READ_POSTS)}
