"""Client for Inspera Assessment (contracts/inspera.md), direct or through Gravitee.

Direct: a bearer token from Inspera's token exchange (`auth.InsperaTokenAuth`: single-flight per
Inspera instance, renewed before expiry and once after a 401). Gravitee: an API key header on
every call and no token call (the gateway attaches Inspera's token).
"""

from __future__ import annotations

import asyncio
from typing import Any, Unpack
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
from examsync.adapters.inspera.auth import InsperaTokenAuth
from examsync.adapters.upstream.client import ClientOptions, UpstreamAdapter, UpstreamClient
from examsync.adapters.upstream.decode import parse_json

DIRECT = "inspera"
GATEWAY = "gravitee"
CREATE_ATTEMPTS = 3  # creates sent at most this often in one run, each after a search found nothing


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


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


class InsperaClient(UpstreamAdapter):
    """One Institution's Inspera route. Use `direct(...)` or `gateway(...)`."""

    def __init__(self, http: UpstreamClient) -> None:
        super().__init__(http)
        self.system = http.system

    @classmethod
    def direct(cls, base_url: str, client_id: str, api_key: str, **options: Unpack[ClientOptions]) -> InsperaClient:
        http = UpstreamClient(DIRECT, base_url, **options)
        http.auth = InsperaTokenAuth(http, client_id, api_key)
        return cls(http)

    @classmethod
    def gateway(cls, base_url: str, api_key: str, **options: Unpack[ClientOptions]) -> InsperaClient:
        return cls(UpstreamClient(GATEWAY, base_url, headers={"X-Gravitee-Api-Key": api_key}, **options))

    async def _request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        json: Any = None,
        accept: frozenset[int] = frozenset(),
        idempotent: bool = True,
    ) -> httpx.Response:
        return await self.http.request(
            method, path, operation=operation, json=json, accept=accept, idempotent=idempotent
        )

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
        response = await self._request("GET", f"/v1/test/{test_id}", operation="get_test", accept=frozenset({404}))
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
                response = await self._request("POST", "/v1/test", operation="create_test", json=body, idempotent=False)
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
