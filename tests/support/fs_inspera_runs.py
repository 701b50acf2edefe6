"""Helpers for the fs-inspera tests: run seeded or hand-built Institutions against the sandbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from examsync.report import InstitutionReport
from examsync.state import InstitutionState
from examsync_sandbox import fs_records
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators import fs as fs_sim
from tests.support.seeded_runs import run_seeded

OSLO = ZoneInfo("Europe/Oslo")
PIPELINE = "fs-inspera"
# never in a body examsync sends Inspera: personal data Inspera's own FS sync owns
FORBIDDEN_FIELDS = frozenset({"candidates", "graders", "committees", "kandidater", "kommisjoner", "sensorer"})


class Run:
    """One run's report, its new state and the audit records it emitted."""

    def __init__(self, report: InstitutionReport, state: InstitutionState, audit: list[dict[str, Any]]) -> None:
        self.report = report
        self.state = state
        self.audit = audit

    @property
    def counts(self) -> dict[str, int]:
        return self.report.pipelines[PIPELINE].counts.model_dump()

    def record(self, fs_id: str) -> dict[str, Any]:
        found = [r for r in self.audit if r["vurdId"] == fs_id]
        assert len(found) == 1, f"{len(found)} audit records for one id"
        return found[0]

    def outcome(self, fs_id: str) -> tuple[str, str | None]:
        r = self.record(fs_id)
        return r["action"], r["reason"]


async def run(
    sb: Sandbox,
    name: str,
    state: InstitutionState | None = None,
    *,
    spec_changes: Callable[[dict[str, Any]], None] | None = None,
    secret_changes: dict[str, dict[str, str]] | None = None,
    **options: Any,
) -> Run:
    """Run the seeded Institution `name` (optionally with its spec or Secrets changed) once."""
    return Run(*await run_seeded(sb, name, state, spec_changes=spec_changes, secret_changes=secret_changes, **options))


def own_institution(number: str) -> Callable[[dict[str, Any]], None]:
    """A spec change that points the seeded UiO Institution at FS institution `number`."""

    def change(spec: dict[str, Any]) -> None:
        spec["fs"]["institutionNumber"] = number

    return change


def fs_record(
    institution: str,
    emnekode: str,
    *,
    title: str = "Testemne",
    days: int = 30,
    responsibles: list[str] | None = None,
    candidates: int = 3,
    **over: Any,
) -> dict[str, Any]:
    """An FS detail record for an exam `days` from now at 09:00 Oslo time, 4 hours."""
    day = (datetime.now(UTC) + timedelta(days=days)).astimezone(OSLO)
    start = datetime(day.year, day.month, day.day, 9, tzinfo=OSLO)
    return fs_records.assessment(
        institution,
        emnekode,
        title,
        start,
        stedkode=f"{institution}_10_10_0",
        responsibles=[{"feideId": f, "navn": "Test Ansvarlig"} for f in (responsibles or [])],
        candidates=[{"kandidatnummer": 100 + i} for i in range(candidates)],
        **over,
    )


def fs_world(sb: Sandbox) -> fs_sim.World:
    world: fs_sim.World = sb.world("fs")
    return world
