"""What the reliability tests share: the seeded fs-inspera Institutions, runs that carry state,
and the two invariants every test checks — no duplicate test per externalId, no eligible
assessment missing (or stale) in the Inspera World."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from examsync.api.spec import Institution, parse_institution
from examsync.credentials import StaticSecrets, decode_secret
from examsync.domain.fs import InvalidSourceData, ineligible_reason, parse_assessment
from examsync.domain.inspera import changed_fields, desired_test, is_linked
from examsync.pipelines.runner import RunOptions, run_institution
from examsync.report import InstitutionReport
from examsync.state import InstitutionState
from examsync_sandbox import seed_no
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators import fs as fs_sim
from examsync_sandbox.simulators import inspera as inspera_sim
from examsync_sandbox.simulators.serving import Faults

PIPELINE = "fs-inspera"
SEEDED = ("uio", "uib")  # the fs-inspera Institutions of examsync_sandbox.seed_no
TIMEOUT = 0.5  # the suite's client timeout (seconds); injected slow answers take SLOW seconds, past it
SLOW = 1.0
FAILURE_REASONS = {"InvalidSourceData", "Conflict", "UpstreamError", "UnknownPeriod"}


class NoSandbox(Sandbox):
    """The sandbox seeded with the Norwegian fs-inspera data only (seed_no): other seeds and
    pipelines are out of this suite's scope, and their state must not change its figures."""

    def __init__(self, faults: dict[str, Faults] | None = None) -> None:
        super().__init__(faults, seed=False)

    async def start(self) -> NoSandbox:
        await super().start()
        seed_no.seed(self)
        return self

    async def __aenter__(self) -> NoSandbox:
        return await self.start()

    def manifests(self) -> list[dict[str, Any]]:
        return seed_no.manifests(self)


def seeded(sb: Sandbox) -> tuple[dict[str, Institution], StaticSecrets, list[dict[str, Any]]]:
    """The seeded fs-inspera Institutions by name, their Secrets, and their manifests."""
    docs = [d for d in sb.manifests() if d["kind"] == "Secret" or d["metadata"]["name"] in SEEDED]
    institutions = {d["metadata"]["name"]: parse_institution(d) for d in docs if d["kind"] == "Institution"}
    secrets = StaticSecrets({d["metadata"]["name"]: decode_secret(d) for d in docs if d["kind"] == "Secret"})
    keep = {use.ref.name for inst in institutions.values() for use in inst.spec.secret_refs()}
    manifests = [d for d in docs if d["kind"] == "Institution" or d["metadata"]["name"] in keep]
    return institutions, secrets, manifests


def snapshot(sb: Sandbox) -> Counter[str]:
    """Tests per externalId in the Inspera World now."""
    world: inspera_sim.World = sb.world("inspera")
    return Counter(str(t["externalTestInfo"].get("externalTestId")) for t in world.tests.values())


def expected_ids(sb: Sandbox, inst: Institution, listed_since: datetime) -> dict[str, dict[str, Any]]:
    """FS ids the rules say must end as one linked Inspera test, with the body it must carry.

    In scope: the institution's INSPERA records changed since `listed_since` (what the first run's
    list call covers), whose detail parses, that FS has not deleted, and that are eligible; not
    those Inspera has disconnected or holds twice (Conflict: touched by no one).
    """
    fs: fs_sim.World = sb.world("fs")
    inspera: inspera_sim.World = sb.world("inspera")
    spec = inst.spec
    assert spec.fs is not None
    out: dict[str, dict[str, Any]] = {}
    for fs_id, record in fs.records.items():
        if str(record.get("institusjonsnr")) != spec.fs.institutionNumber or fs_id in fs.gone:
            continue
        if "INSPERA" not in {
            str(record.get(k) or "").upper() for k in ("eksamenssystem", "sensursystem", "begrunnelsessystem")
        }:
            continue
        if datetime.fromisoformat(record["sistEndret"]) < listed_since:
            continue
        try:
            a = parse_assessment(record)
        except InvalidSourceData:
            continue
        if ineligible_reason(a, spec.fs.startYear, spec.fs.placeCodes) is not None:
            continue
        tests = inspera.by_external_id(fs_id)
        if len(tests) > 1 or (tests and not is_linked(tests[0])):
            continue
        users = [inspera.users[f]["userId"] for f in a.responsibles if f in inspera.users]
        out[fs_id] = desired_test(a, list(dict.fromkeys(users)))
    return out


@dataclass
class Fleet:
    """The seeded Institutions run again and again with their state carried between runs."""

    sb: Sandbox
    institutions: dict[str, Institution] = field(default_factory=dict)
    secrets: StaticSecrets = field(default_factory=StaticSecrets)
    states: dict[str, InstitutionState] = field(default_factory=dict)
    before: Counter[str] = field(default_factory=Counter)  # tests per externalId before any run
    listed_since: datetime | None = None
    reports: list[dict[str, InstitutionReport]] = field(default_factory=list)

    @classmethod
    def of(cls, sb: Sandbox) -> Fleet:
        institutions, secrets, _ = seeded(sb)
        since = datetime.now(UTC) - max(i.spec.lookback_delta for i in institutions.values())
        return cls(sb, institutions, secrets, {n: InstitutionState() for n in institutions}, snapshot(sb), since)

    async def run(self, now: datetime | None = None, **options: Any) -> dict[str, InstitutionReport]:
        out: dict[str, InstitutionReport] = {}
        for name, inst in self.institutions.items():
            opts = RunOptions(audit=lambda record: None, **options)
            if now is not None:
                opts.now = lambda: now
            report, self.states[name] = await run_institution(
                name, inst.metadata.namespace, inst.spec, self.secrets, self.states[name], opts
            )
            out[name] = report
        self.reports.append(out)
        return out

    def expected(self) -> dict[str, dict[str, Any]]:
        assert self.listed_since is not None
        out: dict[str, dict[str, Any]] = {}
        for inst in self.institutions.values():
            out.update(expected_ids(self.sb, inst, self.listed_since))
        return out

    def duplicates(self) -> dict[str, int]:
        """externalIds holding more tests than before the runs and more than one."""
        now = snapshot(self.sb)
        return {k: n for k, n in now.items() if n > max(1, self.before.get(k, 0))}

    def missing_or_stale(self) -> dict[str, str]:
        """Expected ids with no test, or whose test differs in a managed field (which fields)."""
        inspera: inspera_sim.World = self.sb.world("inspera")
        out: dict[str, str] = {}
        for fs_id, body in self.expected().items():
            tests = inspera.by_external_id(fs_id)
            if not tests:
                out[fs_id] = "missing"
                continue
            changed = changed_fields(body, tests[0])
            if changed:
                out[fs_id] = "stale: " + ", ".join(changed)
        return out

    def converged(self) -> bool:
        return not self.duplicates() and not self.missing_or_stale()


def assert_failures_visible(fleet: Fleet, reports: dict[str, InstitutionReport]) -> None:
    """Every expected item not yet right after this run is in the report's failures, with a reason."""
    missing = fleet.missing_or_stale()
    keys: set[str] = set()
    for report in reports.values():
        pipeline = report.pipelines[PIPELINE]
        for failure in pipeline.failures:
            assert failure.reason in FAILURE_REASONS, failure
            assert failure.message, failure
            keys.add(failure.key)
    unexplained = [fs_id for fs_id in missing if f"{PIPELINE}:{fs_id}" not in keys and PIPELINE not in keys]
    assert not unexplained, f"{len(unexplained)} expected item(s) not converged and not reported as failed"
