"""Helpers for the observability tests: an Institution driving the real fs-inspera pipeline.

`seed_fs` puts complete FS detail records (contracts/fs.md) into the sandbox's FS and the one
responsible who is an Inspera user into its Inspera, so a run of the real pipeline gives known
outcomes: two creates, one create with MissingResponsible, one NoCandidates skip and,
optionally, one InvalidSourceData failure. Every person is invented; their values are collected
in PERSONAL so the scans of metrics, Humio and Slack mean something.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from examsync.api.spec import InstitutionSpec, parse_spec
from examsync.credentials import StaticSecrets
from examsync.pipelines.runner import RunOptions, run_institution
from examsync.report import InstitutionReport
from examsync.sinks import build_sinks
from examsync.state import InstitutionState
from examsync_sandbox import fs_records
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators import fs as fs_sim
from examsync_sandbox.simulators import inspera as inspera_sim
from examsync_sandbox.simulators.humio import INGEST_TOKEN
from examsync_sandbox.simulators.slack import webhook_url

OSLO = ZoneInfo("Europe/Oslo")
INSTITUTION_NUMBER = "999"
PLACE = "999_15_10_0"

# responsible with an Inspera user; responsible FS lists who is no Inspera user (MissingResponsible)
RESPONSIBLE = {"feideId": "ola.hansen@uio.no", "navn": "Ola Hansen", "epost": "ola.hansen@uio.no"}
OUTSIDER = {"feideId": "per.olsen@uio.no", "navn": "Per Olsen", "epost": "per.olsen@uio.no"}
CANDIDATE = {
    "kandidatnummer": 101,
    "feideId": "kari.nordmann@student.uio.no",
    "navn": "Kari Nordmann",
    "epost": "kari.nordmann@student.uio.no",
    "mobil": "+4790000000",
    "fodselsnummer": "01019012345",
}
SENSOR = {
    "navn": "Siri Lunde",
    "epost": "siri.lunde@uio.no",
    "mobil": "+4741111111",
    "fodselsnummer": "24067834567",
}
# Personal data the FS records carry; none of it may reach metrics, Humio or Slack.
PERSONAL = tuple(
    dict.fromkeys(
        str(person[key])
        for person in (RESPONSIBLE, OUTSIDER, CANDIDATE, SENSOR)
        for key in ("feideId", "navn", "epost", "mobil", "fodselsnummer")
        if key in person
    )
)
# course codes by what the real rules make of them (titles are no personal data, yet stay out of Slack)
CREATED = ("OBS1000", "OBS1001")
NO_CANDIDATES = "OBS2000"
BROKEN = "OBS3000"
NO_RESPONSIBLE = "OBS4000"


def fs_record(code: str, *, candidates: bool = True, responsible: bool = True) -> dict[str, Any]:
    """A complete FS detail record for an Inspera exam two weeks ahead (Oslo time, with offset)."""
    day = (datetime.now(UTC) + timedelta(days=14)).astimezone(OSLO)
    start = datetime(day.year, day.month, day.day, 9, tzinfo=OSLO)
    return fs_records.assessment(
        INSTITUTION_NUMBER,
        code,
        f"Course {code}",
        start,
        stedkode=PLACE,
        responsibles=[dict(RESPONSIBLE if responsible else OUTSIDER)],
        candidates=[dict(CANDIDATE)] if candidates else [],
        kommisjoner=[{"kommisjonsnr": 1, "sensorer": [dict(SENSOR)]}] if candidates else [],
    )


def seed_fs(sandbox: Sandbox, *, failing: bool = True, missing: bool = True) -> dict[str, str]:
    """Two plain assessments, one without candidates, optionally one broken and one without a
    responsible who is an Inspera user. Returns the FS ids by course code."""
    fs: fs_sim.World = sandbox.world("fs")
    sandbox.world("inspera").add_user(RESPONSIBLE["feideId"])
    ids = {code: fs.add(fs_record(code)) for code in CREATED}
    ids[NO_CANDIDATES] = fs.add(fs_record(NO_CANDIDATES, candidates=False))
    if failing:
        ids[BROKEN] = fs.add_broken(fs_record(BROKEN), missing=("start",))
    if missing:
        ids[NO_RESPONSIBLE] = fs.add(fs_record(NO_RESPONSIBLE, responsible=False))
    return ids


def inspera_world(sandbox: Sandbox) -> inspera_sim.World:
    world: inspera_sim.World = sandbox.world("inspera")
    return world


def forget_inspera_tests(sandbox: Sandbox) -> None:
    """Inspera loses the tests earlier runs made, so the next run creates them again."""
    inspera_world(sandbox).tests.clear()


@dataclass
class Probe:
    sandbox: Sandbox
    name: str
    namespace: str = "obs"

    @property
    def institution(self) -> str:
        return f"{self.namespace}/{self.name}"

    def spec(self, *, slack: bool = True, humio: bool = True, suppress: tuple[str, ...] = ()) -> InstitutionSpec:
        data: dict[str, Any] = {
            "shortName": "OBS",
            "interval": "5m",
            "fs": {
                "baseUrl": self.sandbox.url("fs"),
                "institutionNumber": INSTITUTION_NUMBER,
                "startYear": 2020,
                "credentialsSecretRef": {"name": "obs-fs"},
            },
            "inspera": {
                "enabled": True,
                "baseUrl": self.sandbox.url("inspera"),
                "clientId": "obs.inspera.no",
                "credentialsSecretRef": {"name": "obs-inspera"},
            },
        }
        if slack:
            data["notifications"] = {
                "slack": {"webhookSecretRef": {"name": "obs-slack"}, "suppressReasons": list(suppress)}
            }
        if humio:
            data["audit"] = {"humio": {"url": self.sandbox.url("humio"), "tokenSecretRef": {"name": "obs-humio"}}}
        return parse_spec(data)

    def secrets(self, *, fs_password: str = fs_sim.PASSWORD) -> StaticSecrets:
        return StaticSecrets(
            {
                "obs-fs": {"username": fs_sim.USERNAME, "password": fs_password},
                "obs-inspera": {"apiKey": inspera_sim.API_KEY},
                "obs-slack": {"url": webhook_url(self.sandbox.url("slack"))},
                "obs-humio": {"token": INGEST_TOKEN},
            }
        )

    async def run(self, spec: InstitutionSpec | None = None, secrets: StaticSecrets | None = None) -> InstitutionReport:
        report, _ = await run_institution(
            self.name,
            self.namespace,
            spec or self.spec(),
            secrets or self.secrets(),
            InstitutionState(),
            RunOptions(sinks=build_sinks),
        )
        return report
