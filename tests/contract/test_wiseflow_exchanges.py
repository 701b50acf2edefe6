"""Every request the WISEflow client can send is one WISEflow's OpenAPI description allows, every
answer the simulator gives is one it documents, and the simulator refuses what it does not allow.

Requests and answers are recorded as they cross loopback (in the simulator) and validated against
the committed extract of the spec (`wiseflow_openapi`). The whole suite is checked the same way by
the `wiseflow_contract` fixture in conftest.py; here each operation is driven on purpose.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from examsync.adapters.errors import ClientError
from examsync.adapters.wiseflow.client import WiseflowClient
from examsync.adapters.wiseflow.models import (
    CreatedAtFilter,
    CreateFlow,
    DatesPatch,
    FlowSearch,
    NewExternalSource,
    SearchMetadata,
    UserWrite,
)
from examsync.domain.fs import parse_assessment
from examsync.domain.wiseflow import (
    ACTIVE_STATES,
    FlowState,
    Supervisor,
    desired_flow,
    fs_reference,
    pending_created_from,
    pp_reference,
    user_body,
)
from examsync_sandbox import demo
from examsync_sandbox.server import Sandbox
from examsync_sandbox.simulators.wiseflow import Exchange, World
from tests.support.wiseflow_openapi import (
    READINGS,
    body_problems,
    exchange_problems,
    load_extract,
    openapi,
    request_problems,
    stale_readings,
    template_of,
)

CLIENT, SECRET, LICENCE = "contract-client", "contract-secret", "contract"

# Every operation the client sends (the simulator serves four more: GET /flow/{flowId},
# GET /flows/{flowId}/dates, POST /users/search and Praktikportalen's POST /user/{userId}/access-token,
# checked below).
CLIENT_OPERATIONS = {
    "POST /oauth2/token",
    "POST /flows/search",
    "POST /license/create/flow",
    "GET /flows/{flowId}/external-sources",
    "POST /flows/{flowId}/external-sources",
    "POST /flows/{flowId}/external-sources/{flowExternalSourceReference}/sync/done",
    "POST /flows/{flowId}/external-sources/{flowExternalSourceReference}/sync/fail",
    "PATCH /flows/{flowId}/dates",
    "GET /flows/{flowId}/metadata",
    "PUT /flows/{flowId}/metadata",
    "GET /user/userDataType/{userDataType}/{value}",
    "POST /license/user",
    "GET /flows/{flowId}/assessors",
    "POST /flows/{flowId}/assessors",
    "DELETE /flows/{flowId}/assessors/{assessorId}",
}


def test_readings_still_read_around_the_spec_and_the_result_is_valid_openapi() -> None:
    assert READINGS and stale_readings(load_extract()) == []
    assert openapi() is not None  # openapi-core checks the document itself when it loads it


def _world(sb: Sandbox) -> World:
    world: World = sb.world("wiseflow")
    world.add_client(CLIENT, SECRET, LICENCE)
    return world


async def test_every_client_call_is_allowed_by_the_spec(sandbox: Sandbox, wiseflow_contract: list[Exchange]) -> None:
    world = _world(sandbox)
    manager = world.add_user(
        "Kari", last_name="Nordvik", emails=["kari@ntnu.no"], external_ids={1: "kari@ntnu.no"}, licence=LICENCE
    )
    recorded_at = datetime.now(UTC)
    client = WiseflowClient(sandbox.url("wiseflow"), CLIENT, SECRET)
    try:
        # fs-wiseflow: find by reference, create, link, dates, retitle, adopt by creation time
        reference = fs_reference("MTk0fHxURFQ0MTAwfHwxfHxTS1J8fDIwMjd8fEjDmFNU")
        assert await client.search_flows(FlowSearch(metadata=SearchMetadata(externalSourceReference=reference))) == []
        user_id = await client.find_user(1, "kari@ntnu.no")
        assert user_id == manager.id and await client.find_user(1, "nobody@ntnu.no") is None
        flow_id = await client.create_flow("Objektorientert programmering", "TDT4100", 2, [manager.id])
        await client.add_external_source(flow_id, reference, "FS")
        await client.add_external_source(flow_id, reference, "FS")  # 409: there already
        desired = desired_flow(
            parse_assessment(
                {
                    "id": "x",
                    "emnekode": "TDT4100",
                    "emnetittel": "Objektorientert programmering",
                    "start": "2027-05-20T09:00:00+02:00",
                    "slutt": "2027-05-20T13:00:00+02:00",
                    "sensurfrist": "2027-06-10",
                    "kandidater": [{}],
                }
            )
        )
        await client.patch_dates(flow_id, *desired.windows())
        await client.patch_dates(flow_id, None, desired.marking)
        await client.retitle(flow_id, "Objektorientert programmering (ny)", "TDT4100")
        adoption = SearchMetadata(
            title="Objektorientert programmering (ny)",
            subtitle="TDT4100",
            states=list(ACTIVE_STATES),
            createdAt=CreatedAtFilter(from_=pending_created_from(recorded_at)),
        )
        [found] = await client.search_flows(FlowSearch(metadata=adoption))
        assert found.flow_id == flow_id and found.participation == desired.participation
        assert found.references == (reference,) and found.state is FlowState.NOT_ACTIVATED

        # praktikportalen-wiseflow: discover, sources, users, assessors, outcome on the source
        pp_flow = world.add_flow(
            "Praktik 2",
            "Læreruddannelsen",
            state=FlowState.NOT_ACTIVATED,
            references=[pp_reference("4711")],
            licence=LICENCE,
        )
        active = await client.search_flows(FlowSearch(metadata=SearchMetadata(states=list(ACTIVE_STATES))))
        assert {f.flow_id for f in active} == {flow_id, pp_flow.id}
        [source] = await client.external_sources(pp_flow.id)
        assert source.reference == "praktikportalen-4711"
        supervisor = Supervisor(
            praktikportalId="TS-10023", firstName="Mette", lastName="Holm", email="mette.holm@skole.dk"
        )
        body = UserWrite.model_validate(user_body(supervisor, 4, 9))
        created, is_new = await client.upsert_user(body)
        assert is_new and await client.upsert_user(body) == (created, False)
        for i in range(55):  # past one page of assessors
            other = world.add_user(f"A{i}", emails=[f"a{i}@skole.dk"], licence=LICENCE)
            world.add_assessor(pp_flow, other, 2)
        await client.add_assessor(pp_flow.id, created, 2)
        assessors = await client.assessors(pp_flow.id)
        assert len(assessors) == 56 and created in {a.user_id for a in assessors}
        ours = next(a for a in assessors if a.user_id == created)
        await client.remove_assessor(pp_flow.id, ours.assessor_id)
        await client.report_sync(pp_flow.id, pp_reference("4711"), ok=False)
        await client.report_sync(pp_flow.id, pp_reference("4711"), ok=True)
    finally:
        await client.aclose()

    assert {template_of(x) for x in wiseflow_contract} == CLIENT_OPERATIONS
    assert [p for x in wiseflow_contract for p in exchange_problems(x)] == []


async def test_every_operation_the_simulator_serves_answers_in_the_spec_shapes(
    sandbox: Sandbox, wiseflow_contract: list[Exchange]
) -> None:
    world = _world(sandbox)
    user = world.add_user(
        "Jens", last_name="Kragh", emails=["jens@kommune.dk"], external_ids={9: "TS-10031"}, licence=LICENCE
    )
    dated = world.add_flow(
        "Dated",
        "D1",
        state=FlowState.ACTIVATED,
        licence=LICENCE,
        references=["fs-abc"],
        participation={"start": 10, "end": 20},
        marking={"start": 20, "end": 30},
    )
    bare = world.add_flow("Bare", licence=LICENCE)
    closed = world.add_flow("Closed", state=FlowState.ARCHIVED, licence=LICENCE, references=["fs-old"])
    world.request_sync(dated, "fs-abc")
    async with httpx.AsyncClient(base_url=sandbox.url("wiseflow")) as http:
        token = (
            await http.post(
                "/oauth2/token", data={"client_id": CLIENT, "client_secret": SECRET, "grant_type": "client_credentials"}
            )
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        answers = [
            await http.get(f"/flow/{dated.id}", headers=auth),
            await http.get(f"/flow/{bare.id}", headers=auth),
            await http.get("/flow/1", headers=auth),
            await http.get(f"/flows/{dated.id}/dates", headers=auth),
            await http.get(f"/flows/{bare.id}/dates", headers=auth),
            await http.get(f"/flows/{dated.id}/metadata", headers=auth),
            await http.get(f"/flows/{dated.id}/external-sources", headers=auth),
            await http.get("/flows/1/external-sources", headers=auth),
            await http.post("/users/search", json={"dataTypes": [{"id": 9, "value": "TS-10031"}]}, headers=auth),
            await http.post("/users/search", params={"offset": "0", "limit": "1"}, json={}, headers=auth),
            await http.get("/user/userDataType/9/TS-10031", headers=auth),
            await http.post(f"/flows/{closed.id}/external-sources", json={"reference": "fs-new"}, headers=auth),
            await http.patch(
                f"/flows/{dated.id}/dates", json={"participation": {"start": 50, "end": 40}}, headers=auth
            ),
            await http.post(f"/user/{user.id}/access-token", json={"email": "other@kommune.dk"}, headers=auth),
            await http.post("/flows/search", json={"metadata": {}}),  # no token
            await http.post(
                "/oauth2/token",
                data={"client_id": CLIENT, "client_secret": "wrong", "grant_type": "client_credentials"},
            ),
        ]
    # one status per request above, in order
    # fmt: off
    assert [a.status_code for a in answers] == [200, 200, 404, 200, 200, 200, 200, 404, 200, 200, 200, 403, 400,
                                                400, 401, 400]
    # fmt: on
    assert answers[0].json()["state"] == 1 and answers[0].json()["assessorStartDate"] == 20
    assert answers[6].json()["data"][0]["state"] == "PENDING"
    assert answers[8].json()["data"][0]["dataTypes"] == [{"id": 9, "name": "Praktikportal-ID", "value": "TS-10031"}]
    assert answers[-1].json()["error"] == "invalid_client"
    served = {template_of(x) for x in wiseflow_contract}
    assert {"GET /flow/{flowId}", "GET /flows/{flowId}/dates", "POST /users/search"} <= served
    assert [p for x in wiseflow_contract for p in exchange_problems(x)] == []


@pytest.mark.wiseflow_refusals
async def test_the_simulator_refuses_what_the_spec_does_not_allow(
    sandbox: Sandbox, wiseflow_contract: list[Exchange]
) -> None:
    world = _world(sandbox)
    flow = world.add_flow("Flow", licence=LICENCE)
    user = world.add_user("Ole", emails=["ole@x.dk"], licence=LICENCE)
    async with httpx.AsyncClient(base_url=sandbox.url("wiseflow")) as http:
        token = (
            await http.post(
                "/oauth2/token", data={"client_id": CLIENT, "client_secret": SECRET, "grant_type": "client_credentials"}
            )
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        bad: list[tuple[str, str, dict[str, Any]]] = [
            ("GET", "/flows/search", {}),  # a method the path does not have
            ("GET", "/flows", {}),  # no such path
            ("DELETE", f"/flow/{flow.id}", {}),
            ("POST", "/flows/search", {"json": {"metadata": {"states": ["ACTIVE"]}}}),  # outside the enum
            ("POST", "/flows/search", {"json": {"metadata": {"states": [0, 1]}}}),  # the old integer states
            ("POST", "/flows/search", {"json": {"metadata": {"createdAt": {"from": "yesterday"}}}}),
            ("POST", "/flows/search", {"json": {"metadata": {"subtitel": "x"}}}),  # a field the spec lacks
            ("POST", "/flows/search", {"json": {"metadata": {"title": None}}}),  # null where not nullable
            ("POST", "/flows/search", {"json": {}, "params": {"page": "2"}}),  # an undeclared query parameter
            ("POST", "/flows/search", {"json": {}, "params": {"limit": "ten"}}),
            ("POST", f"/flows/{flow.id}/external-sources", {"json": {"reference": "praktikportalen:4711"}}),
            ("POST", f"/flows/{flow.id}/external-sources", {"json": {"reference": "x" * 256}}),
            ("POST", "/license/create/flow", {"json": {"title": "T", "type": "2", "managers": [user.id]}}),
            ("POST", "/license/create/flow", {"json": {"title": "T", "managers": [user.id]}}),  # type required
            ("PATCH", f"/flows/{flow.id}/dates", {"json": {"participation": {"start": 1.5, "end": 2}}}),
            (
                "PUT",
                f"/flows/{flow.id}/metadata",
                {"json": {"title": "T", "examinationType": "RESIT", "purpose": "EXAMINATION"}},
            ),
            ("POST", "/license/user", {"json": {"firstName": "A", "lastName": "B", "emails": ["a@b.dk"]}}),
            ("POST", "/license/user", {"content": b"firstName=A", "headers": {"Content-Type": FORM}}),
            ("POST", f"/flows/{flow.id}/assessors", {"json": {"userId": str(user.id)}}),
            ("GET", f"/flows/{flow.id}/assessors", {"params": {"limit": "51"}}),
            ("GET", "/flow/not-a-number", {}),
            ("POST", f"/user/{user.id}/access-token", {"json": {"sendEmail": "no"}}),
        ]
        answers = []
        for method, path, options in bad:
            headers = {**auth, **options.pop("headers", {})}
            answers.append(await http.request(method, path, headers=headers, **options))
    statuses = [a.status_code for a in answers]
    assert statuses == [400] * 17 + [415] + [400] * 4, statuses
    for answer in answers:
        if answer.content:  # the documented refusals of the access-token and user operations have no body
            envelope = answer.json()
            assert envelope["success"] is False and envelope["data"] is None
            assert envelope["error"]["code"] == answer.status_code
    # the spec agrees that each was not allowed (and the fixture checks each answer's shape)
    refused = [x for x in wiseflow_contract if x.status in (400, 415)]
    assert len(refused) == len(bad)
    assert all(request_problems(x) for x in refused), [x.path for x in refused if not request_problems(x)]
    # refusals never echo the values sent (they may be personal data)
    assert all(b"praktikportalen:4711" not in a.content and b"yesterday" not in a.content for a in answers)


FORM = "application/x-www-form-urlencoded"

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(
    fs_id=st.binary(min_size=1, max_size=120).map(lambda b: __import__("base64").b64encode(b).decode()),
    title=_TEXT,
    code=_TEXT,
    period=st.from_regex(r"[0-9A-Za-z]{1,12}", fullmatch=True),
    first=_TEXT,
    last=_TEXT,
    pid=_TEXT,
    start=st.integers(min_value=0, max_value=4_000_000_000),
    length=st.integers(min_value=0, max_value=10 * 24 * 3600),
)
def test_requests_built_from_any_source_data_fit_the_spec(
    fs_id: str, title: str, code: str, period: str, first: str, last: str, pid: str, start: int, length: int
) -> None:
    """Whatever FS and Praktikportalen send, the bodies the client builds are ones the spec allows."""
    record = {
        "id": fs_id,
        "emnekode": code,
        "emnetittel": title,
        "kandidater": [{}],
        "start": datetime.fromtimestamp(start, UTC).isoformat(),
        "slutt": datetime.fromtimestamp(start + length, UTC).isoformat(),
        "sensurfrist": "2030-01-15",
    }
    desired = desired_flow(parse_assessment(record))
    bodies = {
        "create-flow-request": CreateFlow(title=desired.title, subTitle=desired.subtitle, type=2, managers=[1]),
        "flow-external-sources-request": NewExternalSource(reference=fs_reference(fs_id), description="FS"),
        "dates-patch-request": DatesPatch.of(*desired.windows()),
        "flows-search-request": FlowSearch(
            metadata=SearchMetadata(
                title=desired.title,
                subtitle=desired.subtitle,
                states=list(ACTIVE_STATES),
                createdAt=CreatedAtFilter(from_=start),
            )
        ),
        "create-user-request": UserWrite.model_validate(
            user_body(Supervisor(praktikportalId=pid, firstName=first, lastName=last, email="x@y.dk"), 4, 9)
        ),
    }
    problems = {name: body_problems(name, model.body()) for name, model in bodies.items()}
    assert all(not p for p in problems.values()), problems
    assert not body_problems("flow-external-sources-request", {"reference": pp_reference(period)})


async def test_the_demo_sends_only_requests_the_spec_allows(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    wiseflow_contract: list[Exchange],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".demo").mkdir()
    assert await demo.demo(tmp_path / "demo.log") == 0
    operations = {template_of(x) for x in wiseflow_contract}
    # both WISEflow pipelines ran: flows created and linked, supervisors imported, sources told
    assert {
        "POST /license/create/flow",
        "POST /license/user",
        "POST /flows/{flowId}/external-sources/{flowExternalSourceReference}/sync/done",
    } <= operations
    assert "GET /flow/{flowId}" not in operations  # the search answers all the rules need
    assert [p for x in wiseflow_contract for p in exchange_problems(x)] == []
    # the demo shows the reference format a manager adds, and the sources told
    shown = capsys.readouterr().out
    assert "praktikportalen-4711: FAILED" in shown and "praktikportalen-4712: SUCCESS" in shown
    assert "WISEflow requests:" in shown


async def test_a_refused_write_to_an_archived_flow_fails_the_item_not_the_credentials(sandbox: Sandbox) -> None:
    world = _world(sandbox)
    closed = world.add_flow("Closed", state=FlowState.ARCHIVED, licence=LICENCE)
    client = WiseflowClient(sandbox.url("wiseflow"), CLIENT, SECRET)
    try:
        with pytest.raises(ClientError) as caught:  # WISEflow's 403 for an archived flow: not an AuthError
            await client.add_external_source(closed.id, "fs-abc", "FS")
        assert caught.value.status == 403
        # what WISEflow said in its envelope goes with the failure
        assert str(caught.value) == "wiseflow link external source: HTTP 403 Forbidden: flow is archived"
    finally:
        await client.aclose()


@pytest.mark.wiseflow_hostile_answers  # the second answer is off the spec on purpose
async def test_the_fault_layers_answers_are_in_wiseflows_envelope_and_checked_against_the_spec(
    sandbox: Sandbox, wiseflow_contract: list[Exchange]
) -> None:
    _world(sandbox)
    faults = sandbox.server("wiseflow").faults
    faults.answers["string-code"] = (400, {"success": False, "data": None, "error": {"code": "E1", "message": "no"}})
    faults.once = {"POST /license/create/flow$": ["400", "answer:string-code"]}
    client = WiseflowClient(sandbox.url("wiseflow"), CLIENT, SECRET)
    try:
        messages = []
        for _ in range(2):
            with pytest.raises(ClientError) as caught:
                await client.create_flow("Eksamen", "EX1", 2, [])
            messages.append(str(caught.value))
    finally:
        await client.aclose()

    # the spec's envelope: its integer code is no code to repeat, its message is (the off-spec
    # string code would be, but the contract check flags that answer)
    assert messages == [
        "wiseflow create flow: HTTP 400 Bad Request: injected fault",
        "wiseflow create flow: HTTP 400 Bad Request: no (E1)",
    ]
    spec_shaped, off_spec = [x for x in wiseflow_contract if x.path == "/license/create/flow"]
    assert spec_shaped.injected and exchange_problems(spec_shaped) == []
    assert off_spec.injected and exchange_problems(off_spec) == [
        "POST /license/create/flow -> 400: at error/code: 'E1' is not of type 'integer'"
    ]
    assert exchange_problems(off_spec, hostile_answers=True) == []  # what the marker above opts out of
