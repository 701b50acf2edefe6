"""Norwegian sandbox data for fs-wiseflow: NTNU, whose FS assessments become WISEflow flows.

The assessments (eksamenssystem WISEFLOW) go into the shared FS world; the flows some of them
already have go into the WISEflow world under NTNU's licence. Every person here is invented.
`CASES` names the FS ids by what each exercises, `EXPECTED` the outcome of a first run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from examsync.domain.fs import parse_assessment
from examsync.domain.wiseflow import FlowState, desired_flow, fs_reference
from examsync_sandbox import fs_records, kube_objects
from examsync_sandbox.simulators import fs as fs_sim
from examsync_sandbox.simulators import wiseflow as wf_sim

OSLO = ZoneInfo("Europe/Oslo")
NAMESPACE = "examsync"
NAME = "ntnu"
FS_NR = "194"
LICENCE = "ntnu"
CLIENT_ID = "ntnu-examsync"
CLIENT_SECRET = "sandbox-wiseflow-ntnu-secret"  # a sandbox value, not a secret
FLOW_TYPE = 2  # FLOWassign
FEIDE_TYPE = 1
ADMIN_FEIDE = "wiseflow-admin@ntnu.no"  # the fallback manager's FEIDE id

# responsibles (eksamensansvarlige): the first three are WISEflow users, the last is not
PEOPLE = [
    {"feideId": "kari.nordvik@ntnu.no", "navn": "Kari Nordvik", "epost": "kari.nordvik@ntnu.no"},
    {"feideId": "ola.bergstad@ntnu.no", "navn": "Ola Bergstad", "epost": "ola.bergstad@ntnu.no"},
    {"feideId": "ingvild.sande@ntnu.no", "navn": "Ingvild Sande", "epost": "ingvild.sande@ntnu.no"},
    {"feideId": "per.utenfor@ntnu.no", "navn": "Per Utenfor", "epost": "per.utenfor@ntnu.no"},
]


@dataclass
class Cases:
    by_name: dict[str, str] = field(default_factory=dict)  # case -> FS id
    flows: dict[str, int] = field(default_factory=dict)  # case -> flow seeded for it
    managers: list[int] = field(default_factory=list)  # WISEflow userIds of PEOPLE[:3]
    fallback: int = 0

    def __getitem__(self, name: str) -> str:
        return self.by_name[name]


CASES = Cases()
# case -> (action, reason) after a first run
EXPECTED: dict[str, tuple[str, str | None]] = {}


def record(
    emnekode: str,
    title: str,
    start: datetime,
    *,
    minutes: int = 240,
    responsibles: list[int] | None = None,
    candidates: int = 3,
    deadline_days: int = 21,
) -> dict[str, Any]:
    return fs_records.assessment(
        FS_NR,
        emnekode,
        title,
        start,
        minutes=minutes,
        system="WISEFLOW",
        stedkode=f"{FS_NR}_63_10_0",
        deadline_days=deadline_days,
        responsibles=[PEOPLE[i] for i in (responsibles if responsibles is not None else [0])],
        candidates=[
            {
                "kandidatnummer": 500 + i,
                "feideId": f"stud{i}@stud.ntnu.no",
                "navn": f"Student {i}",
                "epost": f"stud{i}@stud.ntnu.no",
                "mobil": f"+479000{i:04d}",
            }
            for i in range(candidates)
        ],
        kommisjoner=[],
    )


def _flow_for(
    wf: wf_sim.World,
    rec: dict[str, Any],
    *,
    state: FlowState = FlowState.ACTIVATED,
    title: str | None = None,
    shift_start: int = 0,
) -> wf_sim.Flow:
    """The flow a record would get, linked, optionally with an older title or start."""
    desired = desired_flow(parse_assessment(rec))
    participation = {"start": desired.participation.start + shift_start, "end": desired.participation.end}
    marking = dataclasses.asdict(desired.marking) if desired.marking else None
    return wf.add_flow(
        title or desired.title,
        desired.subtitle,
        state=state,
        flow_type=FLOW_TYPE,
        managers=CASES.managers[:1],
        references=[fs_reference(rec["id"])],
        participation=participation,
        marking=marking,
        licence=LICENCE,
    )


def seed(sandbox: Any, now: datetime | None = None) -> None:
    fs: fs_sim.World = sandbox.world("fs")
    wf: wf_sim.World = sandbox.world("wiseflow")
    moment = now or datetime.now(UTC)
    wf.add_client(CLIENT_ID, CLIENT_SECRET, LICENCE)
    wf.data_type_names[FEIDE_TYPE] = "FEIDE"
    CASES.managers = [
        wf.add_user(p["navn"], emails=[p["epost"]], external_ids={FEIDE_TYPE: p["feideId"]}, licence=LICENCE).id
        for p in PEOPLE[:3]
    ]
    CASES.fallback = wf.add_user(
        "Eksamenskontoret",
        emails=["eksamen@ntnu.no"],
        external_ids={FEIDE_TYPE: ADMIN_FEIDE},
        licence=LICENCE,
    ).id
    day = (moment + timedelta(days=30)).astimezone(OSLO)
    changed = iter(moment - timedelta(hours=h) for h in range(1, 60, 2))

    def at(days: int, hour: int = 9) -> datetime:
        d = day + timedelta(days=days)
        return datetime(d.year, d.month, d.day, hour, tzinfo=OSLO)

    def add(name: str, rec: dict[str, Any], action: str, reason: str | None = None) -> dict[str, Any]:
        CASES.by_name[name] = fs.add(rec, changed=next(changed))
        EXPECTED[name] = (action, reason)
        return rec

    add("ntnu-new", record("TDT4100", "Objektorientert programmering", at(0), responsibles=[0, 1]), "created")
    add("ntnu-new-one-not-user", record("TMA4100", "Matematikk 1", at(1), responsibles=[3, 2]), "created")
    add(
        "ntnu-missing-responsible",
        record("EXPH0300", "Examen philosophicum", at(2), responsibles=[3]),
        "created",
        "MissingResponsible",
    )
    titled = add("ntnu-update-title", record("TDT4120", "Algoritmer og datastrukturer", at(3)), "updated")
    CASES.flows["ntnu-update-title"] = _flow_for(wf, titled, title="Algoritmer (gammel tittel)").id
    moved = add("ntnu-update-dates", record("TFY4115", "Fysikk", at(4)), "updated")
    CASES.flows["ntnu-update-dates"] = _flow_for(wf, moved, shift_start=-3600).id
    same = add("ntnu-unchanged", record("TIØ4258", "Teknologiledelse", at(5)), "unchanged")
    CASES.flows["ntnu-unchanged"] = _flow_for(wf, same).id
    closed = add("ntnu-closed", record("TKT4116", "Mekanikk 1", at(6)), "skipped", "FlowClosed")
    CASES.flows["ntnu-closed"] = _flow_for(wf, closed, state=FlowState.CONCLUDED, title="Mekanikk 1 (avsluttet)").id
    add("ntnu-no-candidates", record("TMA4240", "Statistikk", at(7), candidates=0), "skipped", "NoCandidates")
    twice = add("ntnu-conflict", record("TEP4100", "Fluidmekanikk", at(8)), "failed", "Conflict")
    _flow_for(wf, twice)
    _flow_for(wf, twice)


def manifests(sandbox: Any) -> list[dict[str, Any]]:
    return [
        kube_objects.institution(
            NAMESPACE,
            NAME,
            {
                "shortName": "NTNU",
                "mode": "Apply",
                "interval": "6h",
                "lookback": "72h",
                "fs": {
                    "baseUrl": sandbox.url("fs"),
                    "institutionNumber": FS_NR,
                    "startYear": 2025,
                    "credentialsSecretRef": {"name": "ntnu-fs"},
                },
                "wiseflow": {
                    "enabled": True,
                    "baseUrl": sandbox.url("wiseflow"),
                    "credentialsSecretRef": {"name": "ntnu-wiseflow"},
                    "fsFlows": {
                        "enabled": True,
                        "flowTypeId": FLOW_TYPE,
                        "feideUserDataTypeId": FEIDE_TYPE,
                        "fallbackManagerUserId": CASES.fallback or 1,
                    },
                },
            },
        ),
        kube_objects.secret(NAMESPACE, "ntnu-fs", {"username": fs_sim.USERNAME, "password": fs_sim.PASSWORD}),
        kube_objects.secret(NAMESPACE, "ntnu-wiseflow", {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}),
    ]
