"""Sandbox Inspera Assessment on loopback (contracts/inspera.md), direct and behind Gravitee.

`World` holds users by FEIDE id and tests by assessmentRunId, counts writes and token requests.
The direct app hands out expiring tokens and answers 409 to overlapping token requests (the
handler holds `token_delay` so an overlap is visible); `make_gravitee_app` serves the same World
behind an API key and no token call.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from aiohttp import web

API_KEY = "sandbox-inspera-api-key"  # a sandbox value, not a secret
TITLE_MAX = 500
_FORBIDDEN = frozenset({"candidates", "graders", "committees"})
_READ_ONLY = frozenset({"assessmentRunId", "externalTestInfo", "status"})


@dataclass
class World:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # FEIDE id -> user
    tests: dict[int, dict[str, Any]] = field(default_factory=dict)  # assessmentRunId -> test
    api_keys: set[str] = field(default_factory=lambda: {API_KEY})
    token_ttl: float = 3600.0
    token_delay: float = 0.05  # time a token request is held open, so overlapping ones are seen
    tokens: dict[str, float] = field(default_factory=dict)  # token -> monotonic expiry
    writes: Counter[str] = field(default_factory=Counter)  # "create" / "update"
    write_log: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)  # (op, id, body)
    token_requests: int = 0
    token_conflicts: int = 0
    gateway_requests: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))
    _user_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(501))
    _token_in_flight: int = 0

    # -- helpers for seeds and tests ----------------------------------------------------------

    def add_user(self, feide_id: str, user_id: int | None = None) -> int:
        uid = user_id if user_id is not None else next(self._user_ids)
        self.users[feide_id] = {"userId": uid, "username": feide_id}
        return uid

    def add_test(self, body: dict[str, Any], *, linked: bool = True) -> int:
        """A test that already exists in Inspera (not counted as a write)."""
        return self._store(next(self._ids), body, linked=linked)

    def disconnect(self, test_id: int) -> None:
        self.tests[test_id]["externalTestInfo"]["externalTest"] = False

    def expire_tokens(self) -> None:
        """Every token handed out so far is refused from now on (401)."""
        self.tokens = dict.fromkeys(self.tokens, 0.0)

    def by_external_id(self, external_id: str) -> list[dict[str, Any]]:
        return [t for t in self.tests.values() if t["externalTestInfo"].get("externalTestId") == external_id]

    # -- internals ----------------------------------------------------------------------------

    def _store(self, test_id: int, body: dict[str, Any], *, linked: bool) -> int:
        test = {k: copy.deepcopy(v) for k, v in body.items() if k not in _READ_ONLY}
        test["assessmentRunId"] = test_id
        test["status"] = "created"
        test["externalTestInfo"] = {
            "externalTest": linked and bool(body.get("externalTest", True)),
            "externalSystem": body.get("externalSystem", "FS"),
            "externalTestId": body.get("externalTestId"),
        }
        self.tests[test_id] = test
        return test_id

    def _token_valid(self, token: str) -> bool:
        expiry = self.tokens.get(token)
        return expiry is not None and time.monotonic() < expiry


def _error(status: int, code: str) -> web.Response:
    return web.json_response({"error": code}, status=status)


def _raw_tail(request: web.Request, prefix: str) -> str:
    """The path after `prefix`, percent-decoded once (ids may hold encoded `/`)."""
    raw = request.raw_path.split("?", 1)[0]
    return unquote(raw[len(prefix) :])


def _check_body(body: Any) -> str | None:
    """Inspera's validation of a create/update body: an error code, or None."""
    if not isinstance(body, dict):
        return "invalid_body"
    if _FORBIDDEN & set(body):
        return "unsupported_field"
    title = body.get("title")
    bad_title = not isinstance(title, str) or "[" in title or "]" in title or len(title) > TITLE_MAX
    if title is not None and bad_title:
        return "invalid_title"
    return None


def _routes(world: World) -> web.RouteTableDef:
    routes = web.RouteTableDef()

    @routes.get("/v1/users/external/FEIDE/{feide}")
    async def get_user(request: web.Request) -> web.Response:
        user = world.users.get(_raw_tail(request, "/v1/users/external/FEIDE/"))
        if user is None:
            return _error(404, "user_not_found")
        return web.json_response(user)

    @routes.post("/v1/test/search")
    async def search(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            external_id = body["query"]["filters"]["externalId"]
        except (ValueError, KeyError, TypeError):
            return _error(400, "invalid_query")
        found = [
            {
                "assessmentRunId": t["assessmentRunId"],
                "externalId": external_id,
                "assessmentRunTitle": t.get("title"),
                "status": t.get("status"),
            }
            for t in world.by_external_id(str(external_id))
        ]
        return web.json_response({"hits": len(found), "page": 0, "results": found})

    @routes.get("/v1/test/{test_id:[0-9]+}")
    async def get_test(request: web.Request) -> web.Response:
        test = world.tests.get(int(request.match_info["test_id"]))
        if test is None:
            return _error(404, "test_not_found")
        return web.json_response({"result": test})

    @routes.post("/v1/test")
    async def create(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "invalid_body")
        problem = _check_body(body) or (None if body.get("externalTestId") else "missing_externalTestId")
        if problem:
            return _error(400, problem)
        test_id = world._store(next(world._ids), body, linked=True)
        world.writes["create"] += 1
        world.write_log.append(("create", test_id, body))
        return web.json_response({"assessmentRunId": test_id}, status=201)

    @routes.post("/v1/test/{test_id:[0-9]+}")
    async def update(request: web.Request) -> web.Response:
        test_id = int(request.match_info["test_id"])
        test = world.tests.get(test_id)
        if test is None:
            return _error(404, "test_not_found")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "invalid_body")
        problem = _check_body(body)
        if problem:
            return _error(400, problem)
        test.update({k: copy.deepcopy(v) for k, v in body.items() if k not in _READ_ONLY})
        world.writes["update"] += 1
        world.write_log.append(("update", test_id, body))
        return web.json_response({"assessmentRunId": test_id})

    return routes


def make_app(world: World) -> web.Application:
    """Inspera directly: token call, then Bearer tokens on /v1 calls."""

    @web.middleware
    async def bearer(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/v1/"):
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not world._token_valid(token):
                return _error(401, "invalid_token")
        response: web.StreamResponse = await handler(request)
        return response

    async def token(request: web.Request) -> web.Response:
        world.token_requests += 1
        if world._token_in_flight:
            world.token_conflicts += 1
            return _error(409, "Multiple tokens for user")
        world._token_in_flight += 1
        try:
            await asyncio.sleep(world.token_delay)
            params = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
            if params.get("grant_type") != "authorization_code" or not params.get("client_id"):
                return _error(400, "invalid_request")
            if request.headers.get("code") not in world.api_keys:
                return _error(401, "invalid_grant")
            value = secrets.token_urlsafe(24)
            world.tokens[value] = time.monotonic() + world.token_ttl
            return web.json_response({"access_token": value, "expires_in": int(world.token_ttl)})
        finally:
            world._token_in_flight -= 1

    app = web.Application(middlewares=[bearer])
    app.router.add_post("/authenticate/token/", token)
    app.router.add_routes(_routes(world))
    return app


def make_gravitee_app(world: World, api_key: str) -> web.Application:
    """The same World behind the Gravitee gateway: an API key on every call, no token call."""

    @web.middleware
    async def gateway_key(request: web.Request, handler: Any) -> web.StreamResponse:
        world.gateway_requests += 1
        key = request.headers.get("X-Gravitee-Api-Key")
        if not key:
            return web.json_response(
                {"error": "API_KEY_MISSING", "message": "Unauthorized", "http_status_code": 401}, status=401
            )
        if key != api_key:
            return web.json_response(
                {"error": "API_KEY_INVALID_KEY", "message": "Unauthorized", "http_status_code": 401}, status=401
            )
        response: web.StreamResponse = await handler(request)
        return response

    app = web.Application(middlewares=[gateway_key])
    app.router.add_routes(_routes(world))
    return app
