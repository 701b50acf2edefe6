"""Client for Inspera Assessment (contracts/inspera.md), direct or through Gravitee.

Direct: a token from `POST /authenticate/token/`, single-flight per client (Inspera answers 409
to parallel token requests), renewed before expiry and once after a 401. Gravitee: an API key
header on every call and no token call (the gateway attaches Inspera's token).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict

from examsync.adapters.errors import (
    AuthError,
    CircuitOpen,
    ClientError,
    HostNotAllowed,
    UpstreamError,
)
from examsync.adapters.http import CircuitBreaker, HostLimits, RetryPolicy, UpstreamClient, parse_json, per_loop

DIRECT = "inspera"
GATEWAY = "gravitee"
RENEW_MARGIN = 60.0  # seconds before expiry a token is replaced
TOKEN_CONFLICT_RETRIES = 6
CREATE_ATTEMPTS = 3  # creates sent at most this often in one run, each after a search found nothing

_INSTANCE_LOCKS: dict[tuple[int, str], asyncio.Lock] = {}  # one token request at a time per instance


def _instance_lock(host: str) -> asyncio.Lock:
    return per_loop(_INSTANCE_LOCKS, host, asyncio.Lock)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TokenResponse(_Model):
    access_token: str
    expires_in: float = 3600.0


class InsperaUser(_Model):
    userId: int


class SearchHit(_Model):
    assessmentRunId: int
    externalId: str | None = None
    status: str | None = None


class SearchResponse(_Model):
    hits: int | None = None
    results: list[SearchHit] = []


class TestEnvelope(_Model):
    result: dict[str, Any]


class WriteResponse(_Model):
    assessmentRunId: int


class InsperaClient:
    """One Institution's Inspera route. Use `direct(...)` or `gateway(...)`."""

    def __init__(self, http: UpstreamClient, *, client_id: str | None = None,
                 api_key: str | None = None) -> None:
        self.http = http
        self.system = http.system
        self._client_id = client_id
        self._api_key = api_key  # direct route only; the gateway key is a default header
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.token_requests = 0
        self._refused: AuthError | None = None

    @classmethod
    def direct(cls, base_url: str, client_id: str, api_key: str, *, retry: RetryPolicy | None = None,
               limits: HostLimits | None = None, breaker: CircuitBreaker | None = None,
               transport: httpx.AsyncBaseTransport | None = None) -> InsperaClient:
        http = UpstreamClient(DIRECT, base_url, retry=retry, limits=limits, breaker=breaker,
                              transport=transport)
        return cls(http, client_id=client_id, api_key=api_key)

    @classmethod
    def gateway(cls, base_url: str, api_key: str, *, retry: RetryPolicy | None = None,
                limits: HostLimits | None = None, breaker: CircuitBreaker | None = None,
                transport: httpx.AsyncBaseTransport | None = None) -> InsperaClient:
        headers = {"X-Gravitee-Api-Key": api_key}
        http = UpstreamClient(GATEWAY, base_url, headers=headers, retry=retry, limits=limits, breaker=breaker,
                              transport=transport)
        return cls(http)

    @property
    def uses_token(self) -> bool:
        return self._api_key is not None

    @property
    def calls(self) -> int:
        return self.http.calls

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- auth ---------------------------------------------------------------------------------

    async def _ensure_token(self, stale: str | None = None) -> str:
        """A valid token; one request at a time per client. `stale` is a token the server refused."""
        async with self._lock:
            if self._refused is not None:
                # the key was refused once this run; asking again per item would only repeat it
                raise self._refused
            fresh = self._token is not None and self._token != stale and time.monotonic() < self._expires_at
            if not fresh:
                try:
                    # single-flight per Inspera instance, across every client in the process:
                    # Institutions sharing an instance would otherwise race into 409s
                    async with _instance_lock(self.http.host):
                        await self._fetch_token()
                except AuthError as exc:
                    self._refused = exc
                    raise
            assert self._token is not None
            return self._token

    async def _fetch_token(self) -> None:
        assert self._api_key is not None and self._client_id is not None
        query = f"grant_type=authorization_code&client_id={quote(self._client_id, safe='')}"
        for attempt in range(1, TOKEN_CONFLICT_RETRIES + 1):
            self.token_requests += 1
            try:
                response = await self.http.request(
                    "POST", f"/authenticate/token/?{query}", operation="token", data={},
                    headers={"code": self._api_key}, accept=frozenset(),
                )
            except ClientError as exc:
                # 409: another process of ours holds a token request open; wait and ask again
                if exc.status != 409 or attempt == TOKEN_CONFLICT_RETRIES:
                    raise
                await asyncio.sleep(random.uniform(0.1, 0.3) * attempt)  # jittered: peers drift apart
                continue
            token = parse_json(self.system, "token", response, TokenResponse)
            self._token = token.access_token
            # renew a little before expiry (a tenth of the lifetime for short-lived tokens)
            margin = min(RENEW_MARGIN, token.expires_in / 10)
            self._expires_at = time.monotonic() + max(0.0, token.expires_in - margin)
            return

    async def _request(
        self, method: str, path: str, *, operation: str, json: Any = None,
        accept: frozenset[int] = frozenset(), idempotent: bool = True,
    ) -> httpx.Response:
        http = self.http
        if not self.uses_token:
            return await http.request(method, path, operation=operation, json=json, accept=accept,
                                      idempotent=idempotent)
        used: list[str] = []

        async def auth_headers() -> Mapping[str, str]:
            token = await self._ensure_token()
            used.append(token)
            return {"Authorization": f"Bearer {token}"}

        async def on_unauthorized() -> None:
            await self._ensure_token(stale=used[-1] if used else None)

        return await http.request(method, path, operation=operation, json=json, accept=accept,
                                  idempotent=idempotent, auth_headers=auth_headers,
                                  on_unauthorized=on_unauthorized)

    # -- calls --------------------------------------------------------------------------------

    async def find_user(self, feide_id: str) -> int | None:
        """The Inspera userId of a FEIDE user, or None when Inspera has no such user."""
        path = f"/v1/users/external/FEIDE/{quote(feide_id, safe='')}"
        response = await self._request("GET", path, operation="get_user", accept=frozenset({404}))
        if response.status_code == 404:
            return None
        return parse_json(self.system, "get_user", response, InsperaUser).userId

    async def search_tests(self, external_id: str) -> list[SearchHit]:
        body = {"query": {"filters": {"externalId": external_id}}}
        response = await self._request("POST", "/v1/test/search", operation="search_test", json=body)
        return parse_json(self.system, "search_test", response, SearchResponse).results

    async def get_test(self, test_id: int) -> dict[str, Any] | None:
        """The test (`result` of the answer), or None on 404."""
        response = await self._request("GET", f"/v1/test/{test_id}", operation="get_test",
                                       accept=frozenset({404}))
        if response.status_code == 404:
            return None
        return parse_json(self.system, "get_test", response, TestEnvelope).result

    async def create_test(self, body: dict[str, Any]) -> int:
        """Create a test; never twice for one externalTestId.

        A sent POST is not retried blindly: Inspera may have stored a create whose answer was
        lost. After a failure the test is searched for and adopted if it exists. Only a 503 (the
        server says it did not take the request) with no test found is sent again, a few times;
        after a timeout or another error the error stands and the next run searches first.
        """
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                response = await self._request("POST", "/v1/test", operation="create_test", json=body,
                                               idempotent=False)
            except (ClientError, AuthError, CircuitOpen, HostNotAllowed):
                raise
            except UpstreamError as exc:
                hits = await self.search_tests(str(body["externalTestId"]))
                if len(hits) == 1:
                    return hits[0].assessmentRunId
                if hits or exc.status != 503 or attempt == CREATE_ATTEMPTS:
                    raise
                await asyncio.sleep(self.http.retry.backoff(attempt))
                continue
            return self._written_id("create_test", response)
        raise AssertionError("unreachable")

    async def update_test(self, test_id: int, body: dict[str, Any]) -> int:
        response = await self._request("POST", f"/v1/test/{test_id}", operation="update_test", json=body)
        return self._written_id("update_test", response)

    def _written_id(self, operation: str, response: httpx.Response) -> int:
        return parse_json(self.system, operation, response, WriteResponse).assessmentRunId
