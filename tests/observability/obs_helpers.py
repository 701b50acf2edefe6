"""Helpers for the observability tests: a small FS-reading pipeline and an Institution using it.

The probe pipeline reads FS over HTTP exactly as the contract says (list, then each detail) and
turns each record into a known outcome, so the tests here control which items fail, are
skipped or miss a responsible, independently of the real pipelines' rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from examsync.adapters.errors import UpstreamError
from examsync.adapters.http import RetryPolicy, UpstreamClient
from examsync.adapters.humio.simulator import INGEST_TOKEN
from examsync.adapters.slack.simulator import webhook_url
from examsync.domain.outcomes import Action, ItemResult, Reason
from examsync.pipelines.base import FS_COUNT_KEYS, Discovery, Plan, RunContext
from examsync.pipelines.runner import RunOptions, run_institution
from examsync.report import InstitutionReport
from examsync.sandbox.server import Sandbox
from examsync.secrets import ResolvedSecrets, StaticSecrets
from examsync.sinks import build_sinks
from examsync.spec import InstitutionSpec, parse_spec
from examsync.state import InstitutionState

FS_USER, FS_PASSWORD = "probe-user", "probe-password"
INSTITUTION_NUMBER = "999"
# Personal data the FS records carry; none of it may reach metrics, Humio or Slack.
PERSONAL = (
    "Kari Nordmann",
    "kari.nordmann@uio.no",
    "01019012345",
    "Ola Hansen",
    "ola.hansen@uio.no",
    "+4790000000",
)


class ProbePipeline:
    name = "fs-inspera"
    count_keys = FS_COUNT_KEYS
    discovered_key = "discovered"

    def __init__(self, ctx: RunContext, secrets: ResolvedSecrets) -> None:
        fs = ctx.spec.fs
        assert fs is not None
        ref = fs.credentialsSecretRef.name
        auth = httpx.BasicAuth(
            secrets.value("spec.fs.credentialsSecretRef", ref, "username"),
            secrets.value("spec.fs.credentialsSecretRef", ref, "password"),
        )
        self.ctx = ctx
        self.http = UpstreamClient(
            "fs", fs.baseUrl, auth=auth, retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02)
        )

    async def discover(self) -> Discovery:
        params = {
            "institusjonsnr": INSTITUTION_NUMBER,
            "datofra": "2000-01-01",
            "datotil": "2100-01-01",
            "eksamenssystem": "INSPERA",
            "sistEndret": "2000-01-01T00:00:00+00:00",
        }
        try:
            response = await self.http.request(
                "GET", "/eksamen/liste", params=params, operation="list", accept=frozenset()
            )
        except UpstreamError as exc:
            return Discovery(ids=[], listed=False, error=exc)
        return Discovery(ids=[entry["id"] for entry in response.json()["eksamener"]])

    async def plan(self, source_id: str) -> Plan:
        response = await self.http.request(
            "GET", f"/eksamen/INSPERA/{quote(source_id, safe='')}", operation="get"
        )
        key = f"{self.name}:{source_id}"
        if response.status_code == 404:
            return Plan(ItemResult(key, source_id, Action.SKIPPED, Reason.GONE))
        record: dict[str, Any] = response.json()
        title = str(record.get("emnetittel"))
        if not record.get("start"):
            return Plan(
                ItemResult(
                    key,
                    source_id,
                    Action.FAILED,
                    Reason.INVALID_SOURCE_DATA,
                    "FS record: missing field(s): start",
                    title=title,
                )
            )
        if not record.get("kandidater"):
            return Plan(ItemResult(key, source_id, Action.SKIPPED, Reason.NO_CANDIDATES, title=title))
        found = len(record.get("eksamensansvarlige") or [])
        reason = None if found else Reason.MISSING_RESPONSIBLE
        return Plan(
            ItemResult(
                key,
                source_id,
                Action.CREATED,
                reason,
                target_id=f"run-{source_id[:6]}",
                title=title,
                responsibles_found=found,
                responsibles_total=max(found, 1),
            )
        )

    async def apply(self, plan: Plan) -> ItemResult:
        return plan.outcome

    async def aclose(self) -> None:
        await self.http.aclose()


def fs_record(
    code: str, *, start: bool = True, candidates: bool = True, responsible: bool = True
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "institusjonsnr": INSTITUTION_NUMBER,
        "emnekode": code,
        "versjonskode": "1",
        "vurdkombkode": "SKR",
        "arstall": 2026,
        "vurdtidkode": "HØST",
        "emnetittel": f"Course {code}",
        "eksamenssystem": "INSPERA",
        "stedkode": "999_1_1_0",
        "slutt": "2026-12-01T13:00:00+01:00",
        "eksamensansvarlige": [
            {"feideId": "ola.hansen@uio.no", "navn": "Ola Hansen", "epost": "ola.hansen@uio.no"}
        ]
        if responsible
        else [],
        "kandidater": [
            {
                "kandidatnummer": 101,
                "feideId": "kari.nordmann@uio.no",
                "navn": "Kari Nordmann",
                "epost": "kari.nordmann@uio.no",
                "mobil": "+4790000000",
                "fodselsnummer": "01019012345",
            }
        ]
        if candidates
        else [],
    }
    if start:
        record["start"] = "2026-12-01T09:00:00+01:00"
    return record


def seed_fs(sandbox: Sandbox, *, failing: bool = True, missing: bool = True) -> None:
    """Two plain assessments, one without candidates, optionally one broken and one without a responsible."""
    world = sandbox.world("fs")
    world.credentials[FS_USER] = FS_PASSWORD
    world.add(fs_record("OBS1000"))
    world.add(fs_record("OBS1001"))
    world.add(fs_record("OBS2000", candidates=False))
    if failing:
        world.add(fs_record("OBS3000", start=False))
    if missing:
        world.add(fs_record("OBS4000", responsible=False))


@dataclass
class Probe:
    sandbox: Sandbox
    name: str
    namespace: str = "obs"

    @property
    def institution(self) -> str:
        return f"{self.namespace}/{self.name}"

    def spec(
        self, *, slack: bool = True, humio: bool = True, suppress: tuple[str, ...] = ()
    ) -> InstitutionSpec:
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
                "baseUrl": "http://127.0.0.1:9/api",
                "clientId": "obs.inspera.no",
                "credentialsSecretRef": {"name": "obs-inspera"},
            },
        }
        if slack:
            data["notifications"] = {
                "slack": {"webhookSecretRef": {"name": "obs-slack"}, "suppressReasons": list(suppress)}
            }
        if humio:
            data["audit"] = {
                "humio": {"url": self.sandbox.url("humio"), "tokenSecretRef": {"name": "obs-humio"}}
            }
        return parse_spec(data)

    def secrets(self, *, fs_password: str = FS_PASSWORD) -> StaticSecrets:
        return StaticSecrets(
            {
                "obs-fs": {"username": FS_USER, "password": fs_password},
                "obs-inspera": {"apiKey": "obs-api-key"},
                "obs-slack": {"url": webhook_url(self.sandbox.url("slack"))},
                "obs-humio": {"token": INGEST_TOKEN},
            }
        )

    async def run(
        self, spec: InstitutionSpec | None = None, secrets: StaticSecrets | None = None
    ) -> InstitutionReport:
        report, _ = await run_institution(
            self.name,
            self.namespace,
            spec or self.spec(),
            secrets or self.secrets(),
            InstitutionState(),
            RunOptions(sinks=build_sinks),
        )
        return report
