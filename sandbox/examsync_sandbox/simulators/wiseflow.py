"""A WISEflow simulator for the sandbox: the operations contracts/wiseflow.md names, answering
exactly the shapes of WISEflow's OpenAPI description (built from the same models the client reads).

It refuses what the spec does not allow, with the spec's error envelope `{success: false, data:
null, error: {code, message, errors: [{reason, message}]}}` and 400: an unknown path or method, a
query parameter the operation does not declare, a body field the spec does not name, a value of
the wrong type, a name outside an enum, a reference outside the pattern. Where an operation
documents its own refusal (a 404 without body, the token endpoint's `{error, error_description}`),
it answers that. It also refuses writes this project's rules forbid (changing a concluded or
archived flow, removing an assessor from an activated flow: 403), so a rule broken shows up as an
error. Rate limits are kept per credential (429 with `RateLimit-Reset`).

The data it holds (what tests arrange and assert on) is in `wiseflow_world`. Tests may add a callable
to `exchange_recorders` to see every request and its answer, the fault layer's injected answers
included (the contract tests validate them against the spec); nothing is recorded otherwise.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from examsync.adapters.wiseflow.models import (
    AddAssessor,
    ApiError,
    ApiErrorDetail,
    AssessorAnswer,
    Comparator,
    CreatedFlow,
    CreateFlow,
    DateFilter,
    DatesPatch,
    Envelope,
    FlowSearch,
    MetadataPut,
    NewExternalSource,
    NoData,
    Page,
    Pagination,
    SimpleUser,
    TokenAnswer,
    TokenForm,
    TokenRefusal,
    UserWrite,
    WrittenUser,
)
from examsync.domain.wiseflow import FlowState, SourceState
from examsync_sandbox.simulators.serving import ERROR_BODY, INJECTED_OBSERVER
from examsync_sandbox.simulators.wiseflow_models import (
    AccessTokenAnswer,
    AccessTokenRequest,
    ErrorEnvelope,
    FlowTypeBit,
    UserSearch,
)
from examsync_sandbox.simulators.wiseflow_world import Assessor, ExternalSource, Flow, User, World

R = TypeVar("R", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CLOSED_STATES = (FlowState.CONCLUDED, FlowState.ARCHIVED)
SEARCH_PAGE_LIMIT = 100
ASSESSOR_PAGE_LIMIT = 50
PAGING = ("offset", "limit")
LICENCE_KEY = web.RequestKey("licence", str)
TOKEN_LIFETIME = 3600  # seconds, as WISEflow's tokens
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Exchange:
    """One request as it reached the simulator, and the answer it got."""

    method: str
    path: str  # decoded, as routed
    query: tuple[tuple[str, str], ...]
    content_type: str
    body: bytes
    status: int
    response_content_type: str
    response_body: bytes  # empty for a streamed answer
    injected: bool = False  # the answer came from the fault layer, not from the simulator


async def _report_exchange(request: web.Request, response: web.StreamResponse, *, injected: bool) -> None:
    if not exchange_recorders:
        return
    body = await request.read()  # read already, or kept by aiohttp once read
    answer = response.body if isinstance(response, web.Response) else None
    exchange = Exchange(
        method=request.method,
        path=request.path,
        query=tuple(request.query.items()),
        content_type=request.content_type if body else "",
        body=body,
        status=response.status,
        response_content_type=response.content_type if answer else "",
        response_body=answer if isinstance(answer, bytes) else b"",
        injected=injected,
    )
    for recorder in exchange_recorders:
        recorder(exchange)


async def _report_injected(request: web.Request, response: web.StreamResponse) -> None:
    await _report_exchange(request, response, injected=True)


exchange_recorders: list[Callable[[Exchange], None]] = []

# the sandbox's convention: a simulator module holds World and make_app
__all__ = ["Assessor", "Exchange", "ExternalSource", "Flow", "User", "World", "exchange_recorders", "make_app"]


# --- answers -------------------------------------------------------------------------------------


def _answer(model: BaseModel, status: int = 200) -> web.Response:
    body = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return web.json_response(body, status=status)


def _ok(data: BaseModel | list[Any], status: int = 200) -> web.Response:
    """A success envelope around `data` (a model, or a list of models)."""
    return _answer(Envelope[Any](success=True, data=_dumped(data), error=None), status)


def _dumped(data: BaseModel | list[Any]) -> Any:
    if isinstance(data, list):
        return [_dumped(d) for d in data]
    return data.model_dump(mode="json", by_alias=True, exclude_unset=True)


def envelope_error(status: int, message: str, errors: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The spec's error envelope; `code` is the HTTP status, as in the spec's examples."""
    error = ApiError(
        code=status,
        message=message,
        errors=[ApiErrorDetail(reason=reason, message=text) for reason, text in errors or []],
    )
    return ErrorEnvelope(success=False, data=None, error=error).body()


def _refuse(status: int, message: str, errors: list[tuple[str, str]] | None = None) -> web.Response:
    return web.json_response(envelope_error(status, message, errors), status=status)


def _no_body(status: int) -> web.Response:
    """A refusal the spec documents without a body."""
    return web.Response(status=status)


def _invalid(exc: ValidationError) -> list[tuple[str, str]]:
    """Where and why a body was refused: field paths and rules, never the values (personal data)."""
    return [(".".join(str(p) for p in e["loc"]) or "body", e["msg"]) for e in exc.errors()[:10]]


class _Refused(Exception):
    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


async def _body(
    request: web.Request,
    model: type[R],
    *,
    media: str = "application/json",
    refusal: Callable[[str, list[tuple[str, str]]], web.Response] | None = None,
) -> R:
    """The request body as `model`, or _Refused with the operation's refusal (default: 400 envelope)."""

    def refuse(message: str, errors: list[tuple[str, str]] | None = None) -> _Refused:
        if refusal is not None:
            return _Refused(refusal(message, errors or []))
        return _Refused(_refuse(400, message, errors))

    if request.content_type != media:
        raise refuse(f"the body must be {media}")
    try:
        if media == FORM:
            form = await request.post()
            return model.model_validate({k: v for k, v in form.items() if isinstance(v, str)})
        return model.model_validate_json(await request.read())
    except ValidationError as exc:
        raise refuse("invalid body", _invalid(exc)) from None


def _path_int(request: web.Request, name: str) -> int:
    try:
        return int(request.match_info[name])
    except ValueError:
        raise _Refused(_refuse(400, f"{name} must be an integer")) from None


def _query(request: web.Request, allowed: tuple[str, ...] = ()) -> None:
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        raise _Refused(
            _refuse(400, "unknown query parameter", [(name, "not a parameter of this operation") for name in unknown])
        )


def _paging(request: web.Request, max_limit: int) -> tuple[int, int]:
    _query(request, PAGING)
    try:
        offset = int(request.query.get("offset", "0"))
        limit = int(request.query.get("limit", str(max_limit)))
    except ValueError:
        raise _Refused(_refuse(400, "offset and limit must be integers")) from None
    if offset < 0 or limit < 1 or limit > max_limit:
        raise _Refused(_refuse(400, f"limit must be 1..{max_limit}, offset at least 0"))
    return offset, limit


def _page(rows: list[Any], offset: int, limit: int) -> web.Response:
    page = Page[Any](
        success=True,
        data=[_dumped(r) for r in rows[offset : offset + limit]],
        error=None,
        pagination=Pagination(limit=limit, offset=offset, total=len(rows)),
    )
    return _answer(page)


_COMPARE: dict[Comparator, Callable[[int, int], bool]] = {
    Comparator.GREATER: lambda a, b: a > b,
    Comparator.GREATER_EQUAL: lambda a, b: a >= b,
    Comparator.LESS: lambda a, b: a < b,
    Comparator.LESS_EQUAL: lambda a, b: a <= b,
    Comparator.EQUAL: lambda a, b: a == b,
}


def _dates_match(window: dict[str, int] | None, want: DateFilter | None) -> bool:
    if want is None:
        return True
    for key, value, comparator in (("start", want.start, want.startComparator), ("end", want.end, want.endComparator)):
        if value is None:
            continue
        if window is None or not _COMPARE[comparator or Comparator.EQUAL](window[key], value):
            return False
    return True


def _search(world: World, licence: str, search: FlowSearch) -> list[Flow]:
    m = search.metadata
    hits = sorted((f for f in world.flows.values() if f.licence == licence), key=lambda f: f.id)
    if m is not None:
        if m.title is not None:
            hits = [f for f in hits if m.title.casefold() in f.title.casefold()]  # partial, as WISEflow's
        if m.subtitle is not None:
            hits = [f for f in hits if m.subtitle.casefold() in f.subtitle.casefold()]
        if m.externalSourceReference is not None:
            hits = [f for f in hits if m.externalSourceReference in f.references()]
        if m.code is not None:
            hits = [f for f in hits if f.code == m.code]
        if m.term is not None:
            hits = [f for f in hits if f.term == m.term]
        if m.states is not None:
            hits = [f for f in hits if f.state in m.states]
        if m.purposes is not None:
            hits = [f for f in hits if f.purpose in m.purposes]
        if m.isSis is not None:
            hits = [f for f in hits if f.is_sis is m.isSis]
        if m.createdAt is not None:
            since, until = m.createdAt.from_, m.createdAt.to
            hits = [f for f in hits if (since is None or f.created >= since) and (until is None or f.created <= until)]
    if search.dates is not None:
        dates = search.dates
        hits = [
            f
            for f in hits
            if _dates_match(f.participation, dates.participation) and _dates_match(f.marking, dates.marking)
        ]
    return hits


def make_app(world: World) -> web.Application:
    routes = web.RouteTableDef()

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not exchange_recorders:
            return await handler(request)
        await request.read()  # before the handler, which may read it as a stream
        response = await handler(request)
        await _report_exchange(request, response, injected=False)
        return response

    @web.middleware
    async def refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.http_exception is not None:
            # a path or method the spec does not have
            return _refuse(400, f"no operation {request.method} {request.path}")
        try:
            return await handler(request)
        except _Refused as refused:
            return refused.response

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/oauth2/token":
            return await handler(request)
        header = request.headers.get("Authorization", "")
        client_id = world.tokens.get(header.removeprefix("Bearer ")) if header.startswith("Bearer ") else None
        if client_id is None:
            return _refuse(401, "invalid or expired access token")
        request[LICENCE_KEY] = world.licences.get(client_id, "default")
        wait = world.admit(client_id)
        if wait is not None:
            world.rate_limited += 1
            response = _refuse(429, "rate limit exceeded")
            response.headers["RateLimit-Reset"] = f"{max(wait, 0.01):.3f}"
            return response
        return await handler(request)

    def licence(request: web.Request) -> str:
        return request[LICENCE_KEY]

    def flow_of(request: web.Request) -> Flow | None:
        flow = world.flows.get(_path_int(request, "flowId"))
        return flow if flow is not None and flow.licence == licence(request) else None

    def flow_or_refuse(request: web.Request) -> Flow:
        flow = flow_of(request)
        if flow is None:
            raise _Refused(_refuse(404, "flow not found"))
        return flow

    def writable(request: web.Request) -> Flow:
        """The flow a write names; concluded and archived flows are never changed (403)."""
        flow = flow_or_refuse(request)
        if flow.state in CLOSED_STATES:
            raise _Refused(_refuse(403, f"flow is {flow.state.value.lower()}"))
        return flow

    def user_in_licence(user_id: int | None, request: web.Request) -> User | None:
        user = world.users.get(user_id) if user_id is not None else None
        return user if user is not None and user.licence == licence(request) else None

    @routes.post("/oauth2/token")
    async def token(request: web.Request) -> web.Response:
        _query(request)

        def refusal(message: str, errors: list[tuple[str, str]]) -> web.Response:
            return _answer(TokenRefusal(error="invalid_request", error_description=message), 400)

        form = await _body(request, TokenForm, media=FORM, refusal=refusal)
        if form.grant_type != "client_credentials":
            refusal_body = TokenRefusal(error="unsupported_grant_type", error_description="client_credentials only")
            return _answer(refusal_body, 400)
        if world.credentials.get(form.client_id) != form.client_secret:
            refusal_body = TokenRefusal(error="invalid_client", error_description="client authentication failed")
            return _answer(refusal_body, 400)
        value = secrets.token_urlsafe(24)
        world.tokens[value] = form.client_id
        world.tokens_issued += 1
        return _answer(TokenAnswer(access_token=value, expires_in=TOKEN_LIFETIME, token_type="Bearer"))

    @routes.post("/flows/search")
    async def search(request: web.Request) -> web.Response:
        offset, limit = _paging(request, SEARCH_PAGE_LIMIT)
        body = await _body(request, FlowSearch)
        if body.settings is not None or body.room is not None or body.content is not None:
            return _refuse(400, "the sandbox does not simulate settings, room or content filters")
        hits = _search(world, licence(request), body)
        return _page([f.item() for f in hits], offset, limit)

    @routes.get("/flow/{flowId}")
    async def basic_flow(request: web.Request) -> web.Response:
        _query(request)
        flow = flow_of(request)
        if flow is None:
            return _no_body(404)
        return _answer(flow.basic())

    @routes.post("/license/create/flow")
    async def create_flow(request: web.Request) -> web.Response:
        _query(request)
        body = await _body(request, CreateFlow)
        if not body.title:
            return _refuse(400, "title may not be empty", [("title", "empty")])
        if not body.managers or any(user_in_licence(m, request) is None for m in body.managers):
            return _refuse(400, "every manager must be a user of the licence", [("managers", "unknown user")])
        flow = world.add_flow(
            body.title,
            body.subTitle or "",
            flow_type=body.type,
            managers=list(body.managers),
            licence=licence(request),
        )
        if world.on_flow_created is not None:
            world.on_flow_created(flow)
        return _answer(CreatedFlow(flowId=flow.id), 201)

    @routes.get("/flows/{flowId}/external-sources")
    async def list_sources(request: web.Request) -> web.Response:
        _query(request)
        flow = flow_or_refuse(request)
        return _ok([s.answer() for s in flow.external_sources])

    @routes.post("/flows/{flowId}/external-sources")
    async def add_source(request: web.Request) -> web.Response:
        _query(request)
        flow = writable(request)
        body = await _body(request, NewExternalSource)
        if body.reference in flow.references():
            return _refuse(409, "the external source already exists on the flow")
        source = world.link(flow, body.reference, body.description)
        return _ok(source.answer())

    async def sync(request: web.Request, ok: bool) -> web.Response:
        _query(request)
        if request.can_read_body and await request.read():
            return _refuse(400, "this operation takes no body")
        flow = writable(request)
        reference = request.match_info["flowExternalSourceReference"]
        source = next((s for s in flow.external_sources if s.reference == reference), None)
        if source is None:
            return _refuse(404, "external source not found")
        source.state = SourceState.SUCCESS if ok else SourceState.FAILED
        source.last_sync = source.updated = world.clock()
        source.syncs.append("done" if ok else "fail")
        return _answer(NoData(success=True, data=None, error=None))

    @routes.post("/flows/{flowId}/external-sources/{flowExternalSourceReference}/sync/done")
    async def sync_done(request: web.Request) -> web.Response:
        return await sync(request, ok=True)

    @routes.post("/flows/{flowId}/external-sources/{flowExternalSourceReference}/sync/fail")
    async def sync_fail(request: web.Request) -> web.Response:
        return await sync(request, ok=False)

    @routes.get("/flows/{flowId}/dates")
    async def get_dates(request: web.Request) -> web.Response:
        _query(request)
        return _ok(flow_or_refuse(request).dates())

    @routes.patch("/flows/{flowId}/dates")
    async def patch_dates(request: web.Request) -> web.Response:
        _query(request)
        flow = writable(request)
        body = await _body(request, DatesPatch)
        if flow.type & FlowTypeBit.FLOWORAL:
            return _refuse(400, "dates cannot be set on a FLOWoral flow")
        updated: dict[str, dict[str, int]] = {}
        for group in ("participation", "marking"):
            pair = getattr(body, group)
            current = dict(getattr(flow, group) or {})
            if pair is not None:
                current.update({k: v for k, v in (("start", pair.start), ("end", pair.end)) if v is not None})
            if set(current) == {"start", "end"}:
                if current["start"] > current["end"]:
                    return _refuse(400, f"{group} ends before it starts", [(group, "end before start")])
                updated[group] = current
            elif current:
                return _refuse(400, f"{group} needs both a start and an end", [(group, "incomplete")])
        for group, window in updated.items():
            setattr(flow, group, window)
        return _ok(flow.dates())

    @routes.get("/flows/{flowId}/metadata")
    async def get_metadata(request: web.Request) -> web.Response:
        _query(request)
        return _ok(flow_or_refuse(request).metadata())

    @routes.put("/flows/{flowId}/metadata")
    async def put_metadata(request: web.Request) -> web.Response:
        _query(request)
        flow = writable(request)
        body = await _body(request, MetadataPut)
        # the PUT replaces the object: a field left out is cleared
        flow.title, flow.subtitle = body.title, body.subtitle or ""
        flow.code, flow.term = body.code, body.term
        flow.variant, flow.purpose = body.examinationType, body.purpose
        return _ok(flow.metadata())

    @routes.get("/user/userDataType/{userDataType}/{value}")
    async def find_user(request: web.Request) -> web.Response:
        _query(request)
        type_id = _path_int(request, "userDataType")
        user = world.user_by_external_id(type_id, request.match_info["value"], licence(request))
        if user is None:
            return _no_body(404)
        return _answer(user.answer(world.data_type_names))

    @routes.post("/users/search")
    async def search_users(request: web.Request) -> web.Response:
        offset, limit = _paging(request, SEARCH_PAGE_LIMIT)
        body = await _body(request, UserSearch)
        users = sorted((u for u in world.users.values() if u.licence == licence(request)), key=lambda u: u.id)
        if body.dataTypes:
            wanted = {(q.id, q.value) for q in body.dataTypes}
            users = [u for u in users if any((t, v) in wanted for t, v in u.external_ids.items())]
        return _page([u.hit(world.data_type_names) for u in users], offset, limit)

    @routes.post("/license/user")
    async def write_user(request: web.Request) -> web.Response:
        _query(request)
        body = await _body(
            request,
            UserWrite,
            refusal=lambda message, errors: (
                _no_body(415) if message.startswith("the body must be") else _refuse(400, message, errors)
            ),
        )
        # the spec names externalIds mandatory in words, and e-mails as e-mail addresses
        if not body.externalIds or not all("@" in e for e in body.emails):
            return _refuse(400, "invalid body", [("externalIds", "required"), ("emails", "e-mail addresses")])
        refused = world.refuse_user_write(body.body()) if world.refuse_user_write is not None else None
        if refused is not None:
            return _refuse(refused, "refused")
        ids = {x.userDataTypeId: x.value for x in body.externalIds}
        user = next(
            (u for t, v in ids.items() if (u := world.user_by_external_id(t, v, licence(request))) is not None),
            None,
        )
        created = user is None
        if user is None:
            user = world.add_user(licence=licence(request))
        user.first_name, user.last_name = body.firstName, body.lastName
        user.emails, user.roles = list(body.emails), list(body.roles)
        if body.phone is not None:
            user.phone = body.phone
        if body.language is not None:
            user.language = body.language
        user.external_ids.update(ids)
        return _answer(WrittenUser(userId=user.id), 201 if created else 200)

    def assessor_answer(assessor: Assessor) -> AssessorAnswer:
        user = world.users[assessor.user_id]
        answer = AssessorAnswer(
            assessorId=assessor.assessor_id,
            user=SimpleUser(userId=user.id, firstName=user.first_name, lastName=user.last_name),
        )
        if assessor.assessor_type_id is not None:
            answer.assessorTypeId = assessor.assessor_type_id
        return answer

    @routes.get("/flows/{flowId}/assessors")
    async def list_assessors(request: web.Request) -> web.Response:
        offset, limit = _paging(request, ASSESSOR_PAGE_LIMIT)
        flow = flow_or_refuse(request)
        return _page([assessor_answer(a) for a in flow.assessors], offset, limit)

    @routes.post("/flows/{flowId}/assessors")
    async def add_assessor(request: web.Request) -> web.Response:
        _query(request)
        flow = writable(request)
        body = await _body(request, AddAssessor)
        user: User | None = None
        if body.userId is not None:
            user = user_in_licence(body.userId, request)
        elif body.userData is not None:
            user = world.user_by_external_id(body.userData.userDataTypeId, body.userData.value, licence(request))
        elif body.email is not None:
            user = next(
                (u for u in world.users.values() if u.licence == licence(request) and body.email in u.emails), None
            )
        if user is None:
            return _refuse(400, "no user matches the data given", [("userId", "unknown user")])
        if any(a.user_id == user.id for a in flow.assessors):
            # the spec defines no answer for this; refusing makes a double add visible
            return _refuse(400, "the user is an assessor on the flow already", [("userId", "already an assessor")])
        assessor = world.add_assessor(flow, user, body.assessorTypeId)
        return _ok(assessor_answer(assessor), status=201)

    @routes.delete("/flows/{flowId}/assessors/{assessorId}")
    async def remove_assessor(request: web.Request) -> web.Response:
        _query(request)
        assessor_id = _path_int(request, "assessorId")
        flow = writable(request)
        if flow.state is not FlowState.NOT_ACTIVATED:
            return _refuse(403, "assessors are removed only from a flow not yet activated")
        kept = [a for a in flow.assessors if a.assessor_id != assessor_id]
        if len(kept) == len(flow.assessors):
            return _refuse(404, "assessor not found")
        flow.assessors = kept
        return _answer(NoData(success=True, data=None, error=None))

    @routes.post("/user/{userId}/access-token")
    async def access_token(request: web.Request) -> web.Response:
        _query(request)
        user = user_in_licence(_path_int(request, "userId"), request)
        if user is None:
            return _no_body(404)
        body = await _body(request, AccessTokenRequest, refusal=lambda message, errors: _no_body(400))
        # the link is mailed or handed over: the user needs an e-mail, and a named one must be theirs
        if not user.emails or (body.email is not None and body.email not in user.emails):
            return _no_body(400)
        now = int(world.clock())
        expires = body.expirationDate if body.expirationDate is not None else now + 8 * 3600
        issued = AccessTokenAnswer(token=secrets.token_urlsafe(16), expires=expires, creationDate=now)
        world.access_tokens.append({"userId": user.id, **issued.body()})
        return _answer(issued)

    app = web.Application(middlewares=[record, refusals, auth])
    app.add_routes(routes)
    app[ERROR_BODY] = lambda status: envelope_error(status, "injected fault")
    app[INJECTED_OBSERVER] = _report_injected  # the contract check sees the fault layer's answers too
    return app
