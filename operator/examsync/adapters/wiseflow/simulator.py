"""A WISEflow simulator for the sandbox: the subset of the API contracts/wiseflow.md names.

It is strict where the real API is (search filters, reference pattern, paging limits, required
bodies, rate limits per credential) and refuses writes the rules forbid (changing a concluded or
archived flow, removing an assessor from an activated flow), so a rule broken shows up as an error.
"""

from __future__ import annotations

import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

REFERENCE_PATTERN = re.compile(r"^[0-9a-zA-Z\-_,.;:|]+$")
SEARCH_KEYS = frozenset({"externalSourceReference", "states", "title"})
METADATA_KEYS = ("title", "subtitle", "code", "term", "examinationType", "purpose")
CLOSED_STATES = (4, 5)
LICENCE_KEY = web.RequestKey("licence", str)


@dataclass
class ExternalSource:
    id: int
    reference: str
    description: str
    state: str = "pending"
    last_sync: int | None = None
    syncs: list[str] = field(default_factory=list)  # "done"/"fail" in the order reported

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "reference": self.reference,
            "description": self.description,
            "state": self.state,
            "lastSync": self.last_sync,
        }


@dataclass
class Assessor:
    assessor_id: int
    user_id: int
    assessor_type_id: int


@dataclass
class Flow:
    id: int
    title: str
    subtitle: str
    type: int
    managers: list[int]
    licence: str = "default"
    state: int = 0
    created: int = 0
    participation: dict[str, int] | None = None
    marking: dict[str, int] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # code, term, examinationType, purpose
    external_sources: list[ExternalSource] = field(default_factory=list)
    assessors: list[Assessor] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        p, m = self.participation or {}, self.marking or {}
        return {
            "id": self.id,
            "name": self.title,
            "subName": self.subtitle,
            "type": self.type,
            "state": self.state,
            "participantStartDate": p.get("start"),
            "participantEndDate": p.get("end"),
            "markingStartDate": m.get("start"),
            "markingEndDate": m.get("end"),
            "created": self.created,
        }

    def references(self) -> list[str]:
        return [s.reference for s in self.external_sources]


@dataclass
class User:
    id: int
    first_name: str
    last_name: str
    emails: list[str]
    roles: list[int]
    external_ids: dict[int, str]  # userDataTypeId -> value
    licence: str = "default"


class _Window:
    """Requests of one credential within the last `seconds` (a sliding window)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.times: deque[float] = deque()
        self.peak = 0

    def hit(self, now: float, limit: int) -> float | None:
        """Count a request; seconds until one fits again if the limit is exceeded, else None."""
        while self.times and self.times[0] <= now - self.seconds:
            self.times.popleft()
        if len(self.times) >= limit:
            return self.times[0] + self.seconds - now
        self.times.append(now)
        self.peak = max(self.peak, len(self.times))
        return None


@dataclass
class World:
    """The data a test arranges and asserts on."""

    credentials: dict[str, str] = field(default_factory=dict)  # clientId -> clientSecret
    licences: dict[str, str] = field(default_factory=dict)  # clientId -> licence (default "default")
    flows: dict[int, Flow] = field(default_factory=dict)
    users: dict[int, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> clientId
    per_second: int = 200
    per_minute: int = 5000
    rate_limited: int = 0  # 429s sent
    tokens_issued: int = 0
    access_tokens: list[dict[str, Any]] = field(default_factory=list)
    # called after a flow is stored and before the create answer goes out (crash tests)
    on_flow_created: Callable[[Flow], None] | None = None
    # consulted on each user write: a status to refuse it with (fault tests), or None
    refuse_user_write: Callable[[dict[str, Any]], int | None] | None = None
    clock: Callable[[], float] = time.time
    _next: int = 9001
    _second: dict[str, _Window] = field(default_factory=dict)
    _minute: dict[str, _Window] = field(default_factory=dict)

    def next_id(self) -> int:
        value, self._next = self._next, self._next + 1
        return value

    def peek_next_id(self) -> int:
        """The id the next created object gets (to aim a one-off fault at a path)."""
        return self._next

    # --- arranging -----------------------------------------------------------------------------

    def add_client(self, client_id: str, client_secret: str, licence: str = "default") -> None:
        """API credentials; they are licence-scoped: a client sees its licence's flows and users only."""
        self.credentials[client_id] = client_secret
        self.licences[client_id] = licence

    def add_flow(
        self,
        title: str,
        subtitle: str = "",
        *,
        state: int = 0,
        flow_type: int = 1,
        managers: list[int] | None = None,
        references: list[str] | None = None,
        participation: dict[str, int] | None = None,
        marking: dict[str, int] | None = None,
        created: int | None = None,
        licence: str = "default",
    ) -> Flow:
        flow = Flow(
            id=self.next_id(),
            title=title,
            subtitle=subtitle,
            type=flow_type,
            managers=managers or [],
            licence=licence,
            state=state,
            created=int(self.clock()) if created is None else created,
            participation=participation,
            marking=marking,
            metadata={"code": subtitle, "term": None, "examinationType": None, "purpose": None},
        )
        for reference in references or []:
            self.link(flow, reference, "manual")
        self.flows[flow.id] = flow
        return flow

    def link(self, flow: Flow, reference: str, description: str) -> ExternalSource:
        source = ExternalSource(id=self.next_id(), reference=reference, description=description)
        flow.external_sources.append(source)
        return source

    def add_user(
        self,
        first_name: str = "",
        *,
        last_name: str = "",
        emails: list[str] | None = None,
        external_ids: dict[int, str] | None = None,
        roles: list[int] | None = None,
        licence: str = "default",
    ) -> User:
        user = User(
            id=self.next_id(),
            first_name=first_name,
            last_name=last_name,
            emails=emails or [],
            roles=roles or [],
            external_ids=dict(external_ids or {}),
            licence=licence,
        )
        self.users[user.id] = user
        return user

    def add_assessor(self, flow: Flow, user: User, assessor_type_id: int) -> Assessor:
        assessor = Assessor(self.next_id(), user.id, assessor_type_id)
        flow.assessors.append(assessor)
        return assessor

    # --- asserting -----------------------------------------------------------------------------

    def flows_with_reference(self, reference: str) -> list[Flow]:
        return [f for f in self.flows.values() if reference in f.references()]

    def flows_titled(self, title: str) -> list[Flow]:
        return [f for f in self.flows.values() if f.title == title]

    def user_by_external_id(
        self, user_data_type_id: int, value: str, licence: str | None = None
    ) -> User | None:
        for user in self.users.values():
            if licence is not None and user.licence != licence:
                continue
            if user.external_ids.get(user_data_type_id) == value:
                return user
        return None

    def source(self, flow_id: int, reference: str) -> ExternalSource | None:
        flow = self.flows.get(flow_id)
        return next((s for s in flow.external_sources if s.reference == reference), None) if flow else None

    def peak_per_second(self) -> int:
        return max((w.peak for w in self._second.values()), default=0)

    def admit(self, client_id: str) -> float | None:
        """Count one request of a credential; seconds to wait if it is over a limit."""
        now = time.monotonic()
        second = self._second.setdefault(client_id, _Window(1.0))
        minute = self._minute.setdefault(client_id, _Window(60.0))
        wait = second.hit(now, self.per_second)
        if wait is None:
            wait = minute.hit(now, self.per_minute)
            if wait is not None:
                second.times.pop()  # not admitted after all
        return wait


def _envelope(data: Any, status: int = 200, pagination: dict[str, int] | None = None) -> web.Response:
    body: dict[str, Any] = {"success": True, "data": data, "error": None}
    if pagination is not None:
        body["pagination"] = pagination
    return web.json_response(body, status=status)


def _error(status: int, code: str, message: str = "") -> web.Response:
    return web.json_response(
        {"success": False, "data": None, "error": {"code": code, "message": message or code, "errors": []}},
        status=status,
    )


def _page(request: web.Request, rows: list[Any], max_limit: int) -> web.Response:
    try:
        offset = int(request.query.get("offset", "0"))
        limit = int(request.query.get("limit", str(max_limit)))
    except ValueError:
        return _error(400, "invalid_paging")
    if offset < 0 or limit < 1 or limit > max_limit:
        return _error(400, "invalid_paging", f"limit must be 1..{max_limit}")
    return _envelope(
        rows[offset : offset + limit], pagination={"limit": limit, "offset": offset, "total": len(rows)}
    )


async def _body(request: web.Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def make_app(world: World) -> web.Application:
    routes = web.RouteTableDef()

    @web.middleware
    async def auth(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        if request.path == "/oauth2/token":
            response: web.StreamResponse = await handler(request)
            return response
        header = request.headers.get("Authorization", "")
        client_id = world.tokens.get(header.removeprefix("Bearer ")) if header.startswith("Bearer ") else None
        if client_id is None:
            return _error(401, "unauthorized")
        request[LICENCE_KEY] = world.licences.get(client_id, "default")
        wait = world.admit(client_id)
        if wait is not None:
            world.rate_limited += 1
            response = _error(429, "rate_limited")
            response.headers["RateLimit-Reset"] = f"{max(wait, 0.01):.3f}"
            return response
        response = await handler(request)
        return response

    def licence(request: web.Request) -> str:
        return request[LICENCE_KEY]

    def flow_or_404(request: web.Request) -> Flow | None:
        try:
            flow = world.flows.get(int(request.match_info["flow_id"]))
        except ValueError:
            return None
        return flow if flow is not None and flow.licence == licence(request) else None

    def open_flow(request: web.Request) -> Flow | web.Response:
        """The flow a write names, or the error WISEflow answers: unknown, or concluded/archived."""
        flow = flow_or_404(request)
        if flow is None:
            return _error(404, "not_found")
        if flow.state in CLOSED_STATES:
            return _error(409, "flow_closed")
        return flow

    def user_or_none(user_id: Any, request: web.Request) -> User | None:
        user = world.users.get(user_id) if isinstance(user_id, int) else None
        return user if user is not None and user.licence == licence(request) else None

    @routes.post("/oauth2/token")
    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        client_id, client_secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if not client_id or world.credentials.get(client_id) != client_secret:
            return web.json_response({"error": "invalid_client"}, status=401)
        value = secrets.token_urlsafe(24)
        world.tokens[value] = client_id
        world.tokens_issued += 1
        return web.json_response({"access_token": value, "expires_in": 3599, "token_type": "bearer"})

    @routes.post("/flows/search")
    async def search(request: web.Request) -> web.Response:
        body = await _body(request)
        metadata = body.get("metadata") if body else None
        if not isinstance(metadata, dict) or set(metadata) - SEARCH_KEYS:
            return _error(400, "invalid_filter", "metadata may hold externalSourceReference, states, title")
        hits = sorted((f for f in world.flows.values() if f.licence == licence(request)), key=lambda f: f.id)
        if "externalSourceReference" in metadata:
            hits = [f for f in hits if metadata["externalSourceReference"] in f.references()]
        if "states" in metadata:
            states = metadata["states"]
            if not isinstance(states, list):
                return _error(400, "invalid_filter")
            hits = [f for f in hits if f.state in states]
        if "title" in metadata:
            hits = [f for f in hits if f.title == metadata["title"]]
        rows = [{"flowId": f.id, "title": f.title, "subtitle": f.subtitle, "state": f.state} for f in hits]
        return _page(request, rows, 100)

    @routes.get("/flow/{flow_id}")
    async def get_flow(request: web.Request) -> web.Response:
        flow = flow_or_404(request)
        if flow is None:
            return web.json_response({"error": "not_found"}, status=404)
        return web.json_response(flow.info())

    @routes.post("/license/create/flow")
    async def create_flow(request: web.Request) -> web.Response:
        body = await _body(request)
        if (
            body is None
            or not isinstance(body.get("title"), str)
            or not body["title"]
            or not isinstance(body.get("type"), int)
            or not isinstance(body.get("managers"), list)
            or not body["managers"]
        ):
            return web.json_response({"error": "invalid_body"}, status=400)
        if any(user_or_none(m, request) is None for m in body["managers"]):
            return web.json_response({"error": "unknown_manager"}, status=400)
        flow = world.add_flow(
            body["title"],
            str(body.get("subTitle") or ""),
            flow_type=body["type"],
            managers=list(body["managers"]),
            licence=licence(request),
        )
        if world.on_flow_created is not None:
            world.on_flow_created(flow)
        return web.json_response({"flowId": flow.id}, status=201)

    @routes.get("/flows/{flow_id}/external-sources")
    async def list_sources(request: web.Request) -> web.Response:
        flow = flow_or_404(request)
        if flow is None:
            return _error(404, "not_found")
        return _envelope([s.as_dict() for s in flow.external_sources])

    @routes.post("/flows/{flow_id}/external-sources")
    async def add_source(request: web.Request) -> web.Response:
        flow = flow_or_404(request)
        if flow is None:
            return _error(404, "not_found")
        body = await _body(request)
        reference = body.get("reference") if body else None
        if not isinstance(reference, str) or not REFERENCE_PATTERN.match(reference):
            return _error(400, "invalid_reference")
        if reference in flow.references():
            return _error(409, "duplicate_reference")
        source = world.link(flow, reference, str((body or {}).get("description") or ""))
        return _envelope(source.as_dict(), status=201)

    @routes.post("/flows/{flow_id}/external-sources/{reference}/sync/{outcome}")
    async def sync_source(request: web.Request) -> web.Response:
        flow = flow_or_404(request)
        outcome = request.match_info["outcome"]
        if flow is None or outcome not in ("done", "fail"):
            return _error(404, "not_found")
        source = next(
            (s for s in flow.external_sources if s.reference == request.match_info["reference"]), None
        )
        if source is None:
            return _error(404, "not_found")
        source.state = "done" if outcome == "done" else "failed"
        source.last_sync = int(world.clock())
        source.syncs.append(outcome)
        return _envelope(source.as_dict())

    @routes.get("/flows/{flow_id}/metadata")
    async def get_metadata(request: web.Request) -> web.Response:
        flow = flow_or_404(request)
        if flow is None:
            return _error(404, "not_found")
        return _envelope(
            {
                "title": flow.title,
                "subtitle": flow.subtitle,
                **{k: flow.metadata.get(k) for k in METADATA_KEYS[2:]},
            }
        )

    @routes.put("/flows/{flow_id}/metadata")
    async def put_metadata(request: web.Request) -> web.Response:
        flow = open_flow(request)
        if isinstance(flow, web.Response):
            return flow
        body = await _body(request)
        if body is None or set(METADATA_KEYS) - set(body):
            # the PUT replaces the whole object: a partial body would wipe the other fields
            return _error(400, "incomplete_metadata")
        flow.title, flow.subtitle = str(body["title"]), str(body["subtitle"] or "")
        flow.metadata.update({k: body[k] for k in METADATA_KEYS[2:]})
        return _envelope({k: body[k] for k in METADATA_KEYS})

    @routes.patch("/flows/{flow_id}/dates")
    async def patch_dates(request: web.Request) -> web.Response:
        flow = open_flow(request)
        if isinstance(flow, web.Response):
            return flow
        body = await _body(request)
        if not body or set(body) - {"participation", "marking"}:
            return _error(400, "invalid_dates")
        for group in ("participation", "marking"):
            window = body.get(group)
            if window is None:
                continue
            if not isinstance(window, dict) or not all(
                isinstance(window.get(k), int) for k in ("start", "end")
            ):
                return _error(400, "invalid_dates")
            if window["start"] > window["end"]:
                return _error(400, "invalid_dates", f"{group} ends before it starts")
            setattr(flow, group, {"start": window["start"], "end": window["end"]})
        return _envelope(flow.info())

    @routes.get("/user/userDataType/{type_id}/{value}")
    async def find_user(request: web.Request) -> web.Response:
        try:
            type_id = int(request.match_info["type_id"])
        except ValueError:
            return web.json_response({"error": "invalid"}, status=400)
        user = world.user_by_external_id(type_id, request.match_info["value"], licence(request))
        if user is None:
            return web.json_response({"error": "not_found"}, status=404)
        return web.json_response({"userId": user.id})

    @routes.post("/license/user")
    async def write_user(request: web.Request) -> web.Response:
        body = await _body(request)
        if body is None:
            return web.json_response({"error": "invalid_body"}, status=400)
        external = body.get("externalIds")
        emails = body.get("emails")
        if (
            not isinstance(external, list)
            or not external
            or not isinstance(emails, list)
            or not all(isinstance(e, str) and "@" in e for e in emails)
            or not all(
                isinstance(x, dict)
                and isinstance(x.get("userDataTypeId"), int)
                and isinstance(x.get("value"), str)
                and x["value"]
                for x in external
            )
        ):
            return web.json_response({"error": "invalid_body"}, status=400)
        refused = world.refuse_user_write(body) if world.refuse_user_write is not None else None
        if refused is not None:
            return web.json_response({"error": "refused"}, status=refused)
        ids = {int(x["userDataTypeId"]): str(x["value"]) for x in external}
        user = next(
            (
                u
                for t, v in ids.items()
                if (u := world.user_by_external_id(t, v, licence(request))) is not None
            ),
            None,
        )
        created = user is None
        if user is None:
            user = world.add_user(licence=licence(request))
        user.first_name = str(body.get("firstName") or "")
        user.last_name = str(body.get("lastName") or "")
        user.emails = list(emails)
        user.roles = [r for r in body.get("roles") or [] if isinstance(r, int)]
        user.external_ids.update(ids)
        return web.json_response({"userId": user.id}, status=201 if created else 200)

    @routes.get("/flows/{flow_id}/assessors")
    async def list_assessors(request: web.Request) -> web.Response:
        flow = flow_or_404(request)
        if flow is None:
            return _error(404, "not_found")
        rows = [
            {"assessorId": a.assessor_id, "userId": a.user_id, "assessorTypeId": a.assessor_type_id}
            for a in flow.assessors
        ]
        return _page(request, rows, 50)

    @routes.post("/flows/{flow_id}/assessors")
    async def add_assessor(request: web.Request) -> web.Response:
        flow = open_flow(request)
        if isinstance(flow, web.Response):
            return flow
        body = await _body(request)
        user_id = body.get("userId") if body else None
        type_id = body.get("assessorTypeId") if body else None
        if user_or_none(user_id, request) is None or not isinstance(type_id, int):
            return _error(400, "invalid_body")
        if any(a.user_id == user_id for a in flow.assessors):
            return _error(409, "already_assessor")
        user = user_or_none(user_id, request)
        assert user is not None
        assessor = world.add_assessor(flow, user, int(type_id))
        return _envelope({"assessorId": assessor.assessor_id}, status=201)

    @routes.delete("/flows/{flow_id}/assessors/{assessor_id}")
    async def remove_assessor(request: web.Request) -> web.Response:
        flow = flow_or_404(request)
        if flow is None:
            return _error(404, "not_found")
        if flow.state != 0:
            return _error(409, "flow_activated")
        before = len(flow.assessors)
        flow.assessors = [
            a for a in flow.assessors if str(a.assessor_id) != request.match_info["assessor_id"]
        ]
        if len(flow.assessors) == before:
            return _error(404, "not_found")
        return _envelope(None)

    @routes.post("/user/{user_id}/access-token")
    async def access_token(request: web.Request) -> web.Response:
        try:
            user = user_or_none(int(request.match_info["user_id"]), request)
        except ValueError:
            user = None
        if user is None:
            return _error(404, "not_found")
        body = await _body(request)
        expiration = body.get("expirationDate") if body else None
        if not isinstance(expiration, int):
            return _error(400, "invalid_body")
        if not user.emails:
            return _error(400, "user_has_no_email")
        now = int(world.clock())
        issued = {"token": secrets.token_urlsafe(16), "expires": expiration, "creationDate": now}
        world.access_tokens.append({"userId": user.id, **issued})
        return _envelope(issued)

    app = web.Application(middlewares=[auth])
    app.add_routes(routes)
    return app
