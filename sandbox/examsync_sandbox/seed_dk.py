"""Danish sandbox data for praktikportalen-wiseflow: the university college UCX.

UCX has no FS and no Inspera: its WISEflow licence holds flows whose managers added a
Praktikportalen period as a source. Every person here is invented. `CASES` names the flows and
periods by what each exercises, so tests can assert per case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from examsync.domain.wiseflow import FlowState, pp_reference
from examsync_sandbox import kube_objects
from examsync_sandbox.simulators import praktikportalen as pp_sim
from examsync_sandbox.simulators import wiseflow as wf_sim

NAMESPACE = "examsync"
NAME = "ucx"
LICENCE = "ucx"  # the WISEflow licence the credentials below are scoped to
PRAKTIKPORTAL_ID = "LIC-0042"
CLIENT_ID = "ucx-examsync"
CLIENT_SECRET = "sandbox-wiseflow-ucx-secret"  # a sandbox value, not a secret
PP_API_KEY = "sandbox-praktikportalen-ucx-key"
USER_DATA_TYPE = 9
ASSESSOR_TYPE = 2
ASSESSOR_ROLE = 4

# supervisors (tilsynsførende) by short name: praktikportal id, first, last, e-mail (None: no e-mail)
SUPERVISORS: dict[str, tuple[str, str, str, str | None]] = {
    "mette": ("TS-10023", "Mette", "Holm", "mette.holm@skole.dk"),
    "jens": ("TS-10031", "Jens", "Kragh", "jens.kragh@kommune.dk"),
    "signe": ("TS-10047", "Signe", "Dahl", None),
    "anders": ("TS-10052", "Anders", "Bech", "anders.bech@skole.dk"),  # a WISEflow user already
    "karen": ("TS-10068", "Karen", "Lund", "karen.lund@skole.dk"),  # in two periods
    "peter": ("TS-10074", "Peter", "Vinther", "peter.vinther@bornehus.dk"),
    "lone": ("TS-10089", "Lone", "Skov", "lone.skov@skole.dk"),
}


@dataclass
class Cases:
    """Flow ids by name, filled by `seed`."""

    flows: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)  # supervisors who are WISEflow users up front
    manager: int = 0

    def __getitem__(self, name: str) -> int:
        return self.flows[name]


CASES = Cases()
PERIODS = {"spring": "4711", "autumn": "4712", "third": "4713", "unknown": "9999"}


def supervisor(name: str, students: int = 1) -> dict[str, Any]:
    pid, first, last, email = SUPERVISORS[name]
    return {
        "praktikportalId": pid,
        "firstName": first,
        "lastName": last,
        "email": email,
        "studentCount": students,
    }


def seed(sandbox: Any) -> None:
    wf: wf_sim.World = sandbox.world("wiseflow")
    pp: pp_sim.World = sandbox.world("praktikportalen")
    wf.add_client(CLIENT_ID, CLIENT_SECRET, LICENCE)
    wf.data_type_names[USER_DATA_TYPE] = "Praktikportal-ID"
    pp.api_keys.add(PP_API_KEY)

    manager = wf.add_user("Birgitte", last_name="Munk", emails=["bimu@ucx.dk"], licence=LICENCE)
    CASES.manager = manager.id
    pid, first, last, email = SUPERVISORS["anders"]
    anders = wf.add_user(
        first,
        last_name=last,
        emails=[email or ""],
        roles=[ASSESSOR_ROLE],
        external_ids={USER_DATA_TYPE: pid},
        licence=LICENCE,
    )
    CASES.users["anders"] = anders.id

    pp.add_period(
        PRAKTIKPORTAL_ID,
        PERIODS["spring"],
        title="Praktik 2, forår 2027",
        start="2027-02-01",
        end="2027-04-30",
        supervisors=[
            supervisor("mette", 2),
            supervisor("jens"),
            supervisor("signe"),
            supervisor("anders", 3),
            supervisor("karen"),
        ],
    )
    pp.add_period(
        PRAKTIKPORTAL_ID,
        PERIODS["autumn"],
        title="Praktik 3, efterår 2027",
        start="2027-09-01",
        end="2027-11-30",
        supervisors=[supervisor("karen", 2), supervisor("peter")],
    )
    pp.add_period(
        PRAKTIKPORTAL_ID,
        PERIODS["third"],
        title="Praktik 1, forår 2027",
        start="2027-03-01",
        end="2027-03-31",
        supervisors=[supervisor("lone")],
    )

    def flow(name: str, title: str, state: FlowState, period: str | None) -> wf_sim.Flow:
        # the manager links a flow to a period by an external source `praktikportalen-{periodNumber}`
        refs = [pp_reference(PERIODS[period])] if period else []
        created = wf.add_flow(
            title, "Læreruddannelsen", state=state, managers=[manager.id], references=refs, licence=LICENCE
        )
        CASES.flows[name] = created.id
        return created

    spring = flow("spring-activated", "Praktik 2 - 2. årgang", FlowState.ACTIVATED, "spring")
    wf.add_assessor(spring, anders, ASSESSOR_TYPE)  # already there: not added twice
    flow("autumn-not-activated", "Praktik 3 - 3. årgang", FlowState.NOT_ACTIVATED, "autumn")
    flow("third-started", "Praktik 1 - 1. årgang", FlowState.PARTICIPATION_STARTED, "third")
    flow("unknown-period", "Praktik 4 - 4. årgang", FlowState.PARTICIPATION_ENDED, "unknown")
    flow("concluded", "Praktik 2 - 2025", FlowState.CONCLUDED, "spring")  # never touched
    # no Praktikportalen source: not part of the run
    flow("no-source", "Bachelorprojekt", FlowState.NOT_ACTIVATED, None)


def manifests(sandbox: Any) -> list[dict[str, Any]]:
    return [
        kube_objects.institution(
            NAMESPACE,
            NAME,
            {
                "shortName": "UCX",
                "mode": "Apply",
                "interval": "1h",
                "wiseflow": {
                    "enabled": True,
                    "baseUrl": sandbox.url("wiseflow"),
                    "credentialsSecretRef": {"name": "ucx-wiseflow"},
                    "praktikportalen": {
                        "enabled": True,
                        "baseUrl": sandbox.url("praktikportalen"),
                        "praktikportalId": PRAKTIKPORTAL_ID,
                        "credentialsSecretRef": {"name": "ucx-pp"},
                        "userDataTypeId": USER_DATA_TYPE,
                        "externalAssessorTypeId": ASSESSOR_TYPE,
                        "externalAssessorRoleId": ASSESSOR_ROLE,
                    },
                },
            },
        ),
        kube_objects.secret(NAMESPACE, "ucx-wiseflow", {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}),
        kube_objects.secret(NAMESPACE, "ucx-pp", {"apiKey": PP_API_KEY}),
    ]
