"""Norwegian sandbox data for fs-inspera: UiO (direct Inspera route) and UiB (through Gravitee).

Every person here is invented. Candidates and committees carry names, e-mails, phones and
11-digit fødselsnummer-like numbers so a scan for personal data in logs and reports means
something. The assessments exercise every rule of the pipeline; `CASES` names them by FS id
so tests can assert per case. All `sistEndret` times lie inside the default 72h lookback,
except one record that is deliberately older.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from examsync.domain.fs import parse_assessment
from examsync.domain.inspera import desired_test
from examsync_sandbox import fs_records, kube_objects
from examsync_sandbox.server import GRAVITEE_API_KEY
from examsync_sandbox.simulators import fs as fs_sim
from examsync_sandbox.simulators import humio as humio_sim
from examsync_sandbox.simulators import inspera as inspera_sim
from examsync_sandbox.simulators import slack as slack_sim

OSLO = ZoneInfo("Europe/Oslo")
NAMESPACE = "examsync"
UIO, UIB = "uio", "uib"
UIO_NR, UIB_NR = "185", "184"
UIB_PLACES = ["184_11_20_0", "184_12_30_0"]
# keys of FS records that hold personal data (the personal-data test scans their values)
PERSONAL_KEYS = ("navn", "epost", "mobil", "feideId", "fodselsnummer")

# fmt: off
_FIRST = ["Ingrid", "Sindre", "Maren", "Eirik", "Solveig", "Torstein", "Hedda", "Vegard", "Sigrid", "Audun",
          "Ragnhild", "Håkon", "Tuva", "Øystein", "Live", "Bjørnar", "Karoline", "Trygve", "Synnøve", "Leiv"]
_LAST = ["Haugland", "Bakkevik", "Solheim", "Tveiten", "Lunde", "Myklebust", "Fjeldstad", "Rønningen",
         "Aasheim", "Kvalvik", "Holmedal", "Strømsnes", "Grønlie", "Vatnøy", "Skjelbred", "Torvund"]
# fmt: on


@dataclass
class Cases:
    """FS ids of the seeded assessments by what each exercises (per institution)."""

    by_name: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str:
        return self.by_name[name]


CASES = Cases()
# expected outcome per case name: (action, reason)
EXPECTED: dict[str, tuple[str, str | None]] = {}


class _People:
    """Deterministic invented people."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.used: set[str] = set()

    def person(self, domain: str) -> dict[str, str]:
        while True:
            first, last = self.rng.choice(_FIRST), self.rng.choice(_LAST)
            user = f"{first}.{last}".lower().replace("å", "aa").replace("ø", "o").replace("æ", "ae")
            user = f"{user}{self.rng.randint(1, 99)}"
            if user not in self.used:
                self.used.add(user)
                break
        born = datetime(1960, 1, 1) + timedelta(days=self.rng.randint(0, 16000))
        fnr = born.strftime("%d%m%y") + f"{self.rng.randint(0, 99999):05d}"
        return {
            "navn": f"{first} {last}",
            "feideId": f"{user}@{domain}",
            "epost": f"{user}@{domain}",
            "mobil": f"+47{self.rng.choice('49')}{self.rng.randint(1000000, 9999999)}",
            "fodselsnummer": fnr,
        }

    def candidates(self, n: int, domain: str) -> list[dict[str, Any]]:
        out = []
        for i in range(n):
            p = self.person(f"student.{domain}")
            out.append({"kandidatnummer": 100 + i, **p})
        return out

    def committees(self, n: int, domain: str) -> list[dict[str, Any]]:
        return [{"kommisjonsnr": k + 1, "sensorer": [self.person(domain) for _ in range(2)]} for k in range(n)]


def _local(day: datetime, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=OSLO)


def _record(
    people: _People,
    inst: str,
    domain: str,
    emnekode: str,
    title: str,
    *,
    start: datetime,
    minutes: int,
    responsibles: list[dict[str, str]],
    candidates: int = 4,
    arstall: int | None = None,
    stedkode: str | None = None,
    vurdkomb: str = "SKR",
    vurdtid: str = "HØST",
) -> dict[str, Any]:
    return fs_records.assessment(
        inst,
        emnekode,
        title,
        start,
        minutes=minutes,
        stedkode=stedkode,
        arstall=arstall,
        vurdkomb=vurdkomb,
        vurdtid=vurdtid,
        responsibles=[{k: p[k] for k in ("feideId", "navn", "epost")} for p in responsibles],
        candidates=people.candidates(candidates, domain),
        kommisjoner=people.committees(1 if candidates else 0, domain),
    )


def _case(name: str, fs_id: str, action: str, reason: str | None = None) -> None:
    CASES.by_name[name] = fs_id
    EXPECTED[name] = (action, reason)


def _seed_uio(fs: fs_sim.World, inspera: inspera_sim.World, now: datetime) -> None:
    people = _People(185)
    dom = "uio.no"
    # responsibles: three Inspera users shared across courses, one FS person who is no Inspera user
    users = [people.person(dom) for _ in range(3)]
    ids = [inspera.add_user(u["feideId"]) for u in users]
    outsider = people.person(dom)
    day = (now + timedelta(days=14)).astimezone(OSLO)
    changed = iter(now - timedelta(hours=h) for h in range(1, 60, 2))

    def add(name: str, rec: dict[str, Any], action: str, reason: str | None = None, broken: bool = False) -> str:
        fs_id = fs.add_broken(rec, changed=next(changed)) if broken else fs.add(rec, changed=next(changed))
        _case(name, fs_id, action, reason)
        return fs_id

    def rec(emnekode: str, title: str, offset_days: int, **kw: Any) -> dict[str, Any]:
        kw.setdefault("responsibles", [users[offset_days % 3]])
        start = _local(day + timedelta(days=offset_days), 9)
        minutes = kw.pop("minutes", 240)
        return _record(people, UIO_NR, dom, emnekode, title, start=start, minutes=minutes, **kw)

    add("uio-new", rec("INF1000", "Introduksjon til programmering", 0, responsibles=users[:2]), "created")
    add(
        "uio-new-one-not-user",
        rec("INF1010", "Objektorientert programmering", 1, responsibles=[users[0], outsider]),
        "created",
    )
    add(
        "uio-no-responsible",
        rec("IN2010", "Algoritmer og datastrukturer", 2, responsibles=[outsider]),
        "created",
        "MissingResponsible",
    )

    upd = rec("MAT1100", "Kalkulus", 3)
    add("uio-update", upd, "updated")
    stale = desired_test(parse_assessment(upd), [ids[3 % 3]])
    stale["title"] = "Kalkulus (gammel tittel)"
    inspera.add_test(stale)

    same = rec("MAT1110", "Kalkulus og lineær algebra", 4)
    add("uio-unchanged", same, "unchanged")
    inspera.add_test(desired_test(parse_assessment(same), [ids[4 % 3]]))

    disc = rec("FYS1000", "Fysikk", 5)
    add("uio-disconnected", disc, "skipped", "Disconnected")
    inspera.add_test(desired_test(parse_assessment(disc), [ids[5 % 3]]), linked=False)

    conflict = rec("KJM1000", "Generell kjemi", 6)
    add("uio-conflict", conflict, "failed", "Conflict")
    for _ in range(2):
        inspera.add_test(desired_test(parse_assessment(conflict), [ids[6 % 3]]))

    add("uio-no-candidates", rec("EXPHIL03", "Examen philosophicum", 7, candidates=0), "skipped", "NoCandidates")
    # an autumn-2024 continuation exam held in January 2025: inside the date window, before startYear
    old = _record(
        people,
        UIO_NR,
        dom,
        "ECON1210",
        "Innføring i mikroøkonomi",
        start=datetime(2025, 1, 8, 9, tzinfo=OSLO),
        minutes=180,
        responsibles=[users[0]],
        arstall=2024,
    )
    add("uio-before-start-year", old, "skipped", "BeforeStartYear")
    add(
        "uio-missing-start",
        rec("BIO1000", "Evolusjon, økologi og etologi", 8),
        "failed",
        "InvalidSourceData",
        broken=True,
    )
    gone = add("uio-gone", rec("JUS1211", "Forvaltningsrett", 9), "skipped", "Gone")
    fs.remove(gone, when=now - timedelta(hours=3))
    add("uio-brackets", rec("HIS1300", "Europeisk historie [1750-1900] [eksamen]", 10), "created")
    long_title = "Videregående emne i " + ", ".join(f"tema {i} [del {i}]" for i in range(60))
    add("uio-long-title", rec("FIL2000", long_title, 11), "created")
    dst_start = datetime(2026, 10, 25, 1, 30, tzinfo=OSLO)  # 01:30+02:00; ends 03:30+01:00
    dst = _record(
        people, UIO_NR, dom, "GEO1001", "Innføring i geofag", start=dst_start, minutes=180, responsibles=[users[1]]
    )
    add("uio-dst", dst, "created")
    for i, (code, title) in enumerate(
        [
            ("STK1000", "Innføring i anvendt statistikk"),
            ("SOS1000", "Innføring i sosiologi"),
            ("PSY1010", "Innføring i psykologi"),
            ("MEVIT1100", "Medier og kommunikasjon"),
            ("ITALBA0101", "Italiensk grammatikk"),
        ]
    ):
        add(f"uio-new-{i}", rec(code, title, 12 + i), "created")
    # changed long before the lookback window: not listed on a first run
    quiet = rec("ARK1000", "Arkeologi", 20)
    fs_id = fs.add(quiet, changed=now - timedelta(days=10))
    CASES.by_name["uio-quiet"] = fs_id


def _seed_uib(fs: fs_sim.World, inspera: inspera_sim.World, now: datetime) -> None:
    people = _People(184)
    dom = "uib.no"
    users = [people.person(dom) for _ in range(2)]
    ids = [inspera.add_user(u["feideId"]) for u in users]
    day = (now + timedelta(days=20)).astimezone(OSLO)
    changed = iter(now - timedelta(hours=h) for h in range(2, 60, 3))

    def rec(emnekode: str, title: str, offset_days: int, place: str, **kw: Any) -> dict[str, Any]:
        kw.setdefault("responsibles", [users[offset_days % 2]])
        start = _local(day + timedelta(days=offset_days), 9)
        return _record(people, UIB_NR, dom, emnekode, title, start=start, minutes=240, stedkode=place, **kw)

    def add(name: str, rec: dict[str, Any], action: str, reason: str | None = None) -> dict[str, Any]:
        _case(name, fs.add(rec, changed=next(changed)), action, reason)
        return rec

    add("uib-new", rec("INF100", "Grunnkurs i programmering", 0, UIB_PLACES[1]), "created")
    add("uib-new-2", rec("MAT111", "Grunnkurs i matematikk I", 1, UIB_PLACES[1], responsibles=users), "created")
    add("uib-new-3", rec("BIO101", "Organismebiologi", 2, UIB_PLACES[0]), "created")
    add("uib-place-prefix", rec("INF101", "Videregående programmering", 3, "184_12_30"), "skipped", "PlaceFiltered")
    add("uib-place-other", rec("JUS113", "Privatrett", 4, "184_14_10_0"), "skipped", "PlaceFiltered")
    moved = add("uib-update", rec("STAT110", "Grunnkurs i statistikk", 5, UIB_PLACES[0]), "updated")
    before = desired_test(parse_assessment(moved), [ids[5 % 2]])
    before["startTime"] = "2026-01-01T08:00:00Z"
    inspera.add_test(before)
    same = add("uib-unchanged", rec("KJEM110", "Generell kjemi", 6, UIB_PLACES[0]), "unchanged")
    inspera.add_test(desired_test(parse_assessment(same), [ids[6 % 2]]))
    add("uib-no-candidates", rec("FYS111", "Mekanikk", 7, UIB_PLACES[1], candidates=0), "skipped", "NoCandidates")


def seed(sandbox: Any, now: datetime | None = None) -> None:
    fs: fs_sim.World = sandbox.world("fs")
    inspera: inspera_sim.World = sandbox.world("inspera")
    moment = now or datetime.now(UTC)
    _seed_uio(fs, inspera, moment)
    _seed_uib(fs, inspera, moment)


def manifests(sandbox: Any) -> list[dict[str, Any]]:
    def fs_spec(nr: str, ref: str, places: list[str]) -> dict[str, Any]:
        return {
            "baseUrl": sandbox.url("fs"),
            "institutionNumber": nr,
            "startYear": 2025,
            "placeCodes": places,
            "credentialsSecretRef": {"name": ref},
        }

    fs_creds = {"username": fs_sim.USERNAME, "password": fs_sim.PASSWORD}
    return [
        kube_objects.institution(
            NAMESPACE,
            UIO,
            {
                "shortName": "UiO",
                "mode": "Apply",
                "interval": "6h",
                "lookback": "72h",
                "fs": fs_spec(UIO_NR, "uio-fs", []),
                "inspera": {
                    "enabled": True,
                    "baseUrl": sandbox.url("inspera"),
                    "clientId": "uio.inspera.no",
                    "credentialsSecretRef": {"name": "uio-inspera"},
                },
                # the sinks too, so the demo shows a Slack message and audit records in Humio
                "notifications": {
                    "slack": {"webhookSecretRef": {"name": "uio-slack"}, "suppressReasons": ["Disconnected"]}
                },
                "audit": {"humio": {"url": sandbox.url("humio"), "tokenSecretRef": {"name": "uio-humio"}}},
            },
        ),
        kube_objects.secret(NAMESPACE, "uio-fs", fs_creds),
        kube_objects.secret(NAMESPACE, "uio-inspera", {"apiKey": inspera_sim.API_KEY}),
        kube_objects.secret(NAMESPACE, "uio-slack", {"url": slack_sim.webhook_url(sandbox.url("slack"))}),
        kube_objects.secret(NAMESPACE, "uio-humio", {"token": humio_sim.INGEST_TOKEN}),
        kube_objects.institution(
            NAMESPACE,
            UIB,
            {
                "shortName": "UiB",
                "mode": "Apply",
                "interval": "6h",
                "lookback": "72h",
                "fs": fs_spec(UIB_NR, "uib-fs", list(UIB_PLACES)),
                "inspera": {
                    "enabled": True,
                    "clientId": "uib.inspera.no",
                    "gateway": {"baseUrl": sandbox.url("gravitee"), "apiKeySecretRef": {"name": "uib-gravitee"}},
                },
            },
        ),
        kube_objects.secret(NAMESPACE, "uib-fs", fs_creds),
        kube_objects.secret(NAMESPACE, "uib-gravitee", {"apiKey": GRAVITEE_API_KEY}),
    ]
