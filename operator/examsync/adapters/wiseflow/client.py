"""WISEflow API client (contracts/wiseflow.md): OAuth2 client credentials, both response shapes,
paging, and a client-side rate limit per credential that stays under WISEflow's own."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from aiolimiter import AsyncLimiter
from pydantic import BaseModel, ValidationError

from examsync.adapters.error_text import UpstreamText
from examsync.adapters.errors import InvalidResponse
from examsync.adapters.http import UpstreamClient, json_body, per_loop, shape_error, unwrap_envelope
from examsync.adapters.paging import Page, read_all_pages
from examsync.domain.wiseflow import Assessor, ExternalSource, FlowInfo, FlowSummary
from examsync.secrets import ResolvedSecrets
from examsync.spec import WiseflowSpec

M = TypeVar("M", bound=BaseModel)

SYSTEM = "wiseflow"
PAGE_LIMIT = 100
ASSESSOR_PAGE_LIMIT = 50

# WISEflow's limits per credential. The client keeps under both in every sliding window: a leaky
# bucket lets `burst` through at once and then `rate`, so burst + rate * window <= limit.
PER_SECOND = 200
PER_MINUTE = 5000


def limiter_under(limit: int, window: float, burst: int) -> AsyncLimiter:
    """An AsyncLimiter that never lets more than `limit` requests into any `window` seconds."""
    burst = max(1, min(burst, limit // 2))
    rate = (limit - burst) / window
    return AsyncLimiter(burst, burst / rate)


# (event loop, base URL + limits + credential hash) -> limiters; shared by every client of one credential
_LIMITERS: dict[tuple[int, str], tuple[AsyncLimiter, ...]] = {}


def shared_limiters(
    base_url: str, client_id: str, per_second: int = PER_SECOND, per_minute: int = PER_MINUTE
) -> tuple[AsyncLimiter, ...]:
    credential = hashlib.sha256(client_id.encode("utf-8")).hexdigest()[:16]
    return per_loop(_LIMITERS, f"{base_url}|{per_second}|{per_minute}|{credential}", lambda: (
        limiter_under(per_second, 1.0, max(1, per_second // 20)),
        limiter_under(per_minute, 60.0, max(1, per_minute // 25)),
    ))


class _Token:
    """One access token per client, fetched by one caller at a time (single flight)."""

    def __init__(self) -> None:
        self.value: str | None = None
        self.expires_at = 0.0
        self.lock = asyncio.Lock()


class WiseflowClient:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        per_second: int = PER_SECOND,
        per_minute: int = PER_MINUTE,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._token = _Token()
        self.http = UpstreamClient(
            SYSTEM,
            base_url,
            transport=transport,
            rate_limiter=shared_limiters(base_url, client_id, per_second, per_minute),
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    # --- auth ----------------------------------------------------------------------------------

    async def _fetch_token(self) -> None:
        response = await self.http.request(
            "POST",
            "/oauth2/token",
            operation="token",
            accept=frozenset(),
            data={
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "grant_type": "client_credentials",
            },
        )
        body = _json(response, "token")
        body = unwrap_envelope(body)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise InvalidResponse(
                SYSTEM, "token", "unexpected response shape at access_token", response.status_code
            )
        expires_in = body.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 300.0
        self._token.value = token
        # renew a little early so a token never expires in flight
        self._token.expires_at = time.monotonic() + max(1.0, lifetime - 30.0)

    async def _current_token(self) -> str:
        token = self._token
        if token.value is None or time.monotonic() >= token.expires_at:
            async with token.lock:
                if token.value is None or time.monotonic() >= token.expires_at:
                    await self._fetch_token()
        assert token.value is not None
        return token.value

    async def _reauthenticate(self, refused: str | None) -> None:
        """After a 401 on a request sent with `refused`: renew unless another caller already has."""
        async with self._token.lock:
            if self._token.value == refused:
                await self._fetch_token()

    async def _call(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        accept: frozenset[int] = frozenset(),
        idempotent: bool = True,
    ) -> httpx.Response:
        used: list[str] = []  # the token each attempt of this request was sent with

        async def auth_headers() -> Mapping[str, str]:
            token = await self._current_token()
            used.append(token)
            return {"Authorization": f"Bearer {token}"}

        async def on_unauthorized() -> None:
            await self._reauthenticate(used[-1] if used else None)

        return await self.http.request(
            method,
            path,
            operation=operation,
            json=json,
            params=params,
            accept=accept,
            auth_headers=auth_headers,
            on_unauthorized=on_unauthorized,
            idempotent=idempotent,
        )

    async def _data(self, method: str, path: str, operation: str, **kwargs: Any) -> Any:
        response = await self._call(method, path, operation, **kwargs)
        if not response.content:
            return None
        return _unwrap(_json(response, operation), operation, response.status_code)

    async def _pages(self, method: str, path: str, operation: str, limit: int, json: Any = None) -> list[Any]:
        async def page_at(offset: int) -> Page:
            response = await self._call(
                method, path, operation, json=json, params={"offset": str(offset), "limit": str(limit)}
            )
            payload = _json(response, operation)
            rows = _unwrap(payload, operation, response.status_code)
            if not isinstance(rows, list):
                raise InvalidResponse(
                    SYSTEM, operation, "unexpected response shape at data", response.status_code
                )
            return Page(rows, _total(payload))

        return await read_all_pages(page_at, limit, system=SYSTEM, operation=operation)

    # --- flows ---------------------------------------------------------------------------------

    async def search_flows(self, metadata: Mapping[str, Any]) -> list[FlowSummary]:
        rows = await self._pages(
            "POST", "/flows/search", "search flows", PAGE_LIMIT, {"metadata": dict(metadata)}
        )
        return [_model(FlowSummary, row, "search flows") for row in rows]

    async def get_flow(self, flow_id: int) -> FlowInfo | None:
        response = await self._call("GET", f"/flow/{flow_id}", "get flow", accept=frozenset({404}))
        if response.status_code == 404:
            return None
        return _model(FlowInfo, _unwrap(_json(response, "get flow"), "get flow", 200), "get flow")

    async def create_flow(self, title: str, subtitle: str, flow_type: int, managers: list[int]) -> int:
        body = {"title": title, "subTitle": subtitle, "type": flow_type, "managers": managers}
        # never resent after it may have reached WISEflow: a second send would make a second flow
        data = await self._data("POST", "/license/create/flow", "create flow", json=body, idempotent=False)
        flow_id = data.get("flowId") if isinstance(data, dict) else None
        if not isinstance(flow_id, int):
            raise InvalidResponse(SYSTEM, "create flow", "unexpected response shape at flowId")
        return flow_id

    async def external_sources(self, flow_id: int) -> list[ExternalSource]:
        data = await self._data("GET", f"/flows/{flow_id}/external-sources", "list external sources")
        if not isinstance(data, list):
            raise InvalidResponse(SYSTEM, "list external sources", "unexpected response shape at data")
        return [_model(ExternalSource, row, "list external sources") for row in data]

    async def add_external_source(self, flow_id: int, reference: str, description: str) -> None:
        """Link a source; a 409 means the reference is there already (an earlier try got through)."""
        await self._call(
            "POST",
            f"/flows/{flow_id}/external-sources",
            "link external source",
            json={"reference": reference, "description": description},
            accept=frozenset({409}),
        )

    async def report_sync(self, flow_id: int, reference: str, ok: bool) -> None:
        outcome = "done" if ok else "fail"
        await self._call(
            "POST",
            f"/flows/{flow_id}/external-sources/{quote(reference, safe='')}/sync/{outcome}",
            f"report sync {outcome}",
        )

    async def get_metadata(self, flow_id: int) -> dict[str, Any]:
        data = await self._data("GET", f"/flows/{flow_id}/metadata", "get flow metadata")
        if not isinstance(data, dict):
            raise InvalidResponse(SYSTEM, "get flow metadata", "unexpected response shape at data")
        return data

    async def put_metadata(self, flow_id: int, metadata: Mapping[str, Any]) -> None:
        await self._call("PUT", f"/flows/{flow_id}/metadata", "update flow metadata", json=dict(metadata))

    async def patch_dates(self, flow_id: int, dates: Mapping[str, Any]) -> None:
        await self._call("PATCH", f"/flows/{flow_id}/dates", "update flow dates", json=dict(dates))

    # --- users and assessors -------------------------------------------------------------------

    async def find_user(self, user_data_type_id: int, value: str) -> int | None:
        """The user holding `value` in a user data type (a FEIDE id or praktikportal id), or None."""
        response = await self._call(
            "GET",
            f"/user/userDataType/{user_data_type_id}/{quote(value, safe='')}",
            "find user",
            accept=frozenset({404}),
        )
        if response.status_code == 404:
            return None
        data = _unwrap(_json(response, "find user"), "find user", 200)
        user_id = data.get("userId") if isinstance(data, dict) else None
        if not isinstance(user_id, int):
            raise InvalidResponse(SYSTEM, "find user", "unexpected response shape at userId", 200)
        return user_id

    async def upsert_user(self, body: Mapping[str, Any]) -> tuple[int, bool]:
        """Create or update a licence user; (userId, created). Never resent after it may have been
        stored: the next run's look-up finds the user instead."""
        response = await self._call(
            "POST", "/license/user", "write user", json=dict(body), idempotent=False
        )
        data = _unwrap(_json(response, "write user"), "write user", response.status_code)
        user_id = data.get("userId") if isinstance(data, dict) else None
        if not isinstance(user_id, int):
            raise InvalidResponse(
                SYSTEM, "write user", "unexpected response shape at userId", response.status_code
            )
        return user_id, response.status_code == 201

    async def assessors(self, flow_id: int) -> list[Assessor]:
        rows = await self._pages("GET", f"/flows/{flow_id}/assessors", "list assessors", ASSESSOR_PAGE_LIMIT)
        return [_model(Assessor, row, "list assessors") for row in rows]

    async def add_assessor(self, flow_id: int, user_id: int, assessor_type_id: int) -> None:
        await self._call(
            "POST",
            f"/flows/{flow_id}/assessors",
            "add assessor",
            json={"userId": user_id, "assessorTypeId": assessor_type_id},
            idempotent=False,  # never resent: the caller lists the assessors after a failure
        )

    async def remove_assessor(self, flow_id: int, assessor_id: int) -> None:
        await self._call(
            "DELETE", f"/flows/{flow_id}/assessors/{assessor_id}", "remove assessor", accept=frozenset({404})
        )

    async def create_access_token(self, user_id: int, expiration: int) -> dict[str, Any]:
        """What Praktikportalen does for an access link (the operator itself never calls this)."""
        data = await self._data(
            "POST",
            f"/user/{user_id}/access-token",
            "create access token",
            json={"expirationDate": expiration, "sendEmail": False},
        )
        if not isinstance(data, dict):
            raise InvalidResponse(SYSTEM, "create access token", "unexpected response shape at data")
        return data


def _json(response: httpx.Response, operation: str) -> Any:
    return json_body(SYSTEM, operation, response)


def _unwrap(payload: Any, operation: str, status: int) -> Any:
    if isinstance(payload, dict) and payload.get("success") is False:
        raise InvalidResponse(SYSTEM, operation, "success is false", status,
                              upstream=UpstreamText.from_payload(payload, status))
    return unwrap_envelope(payload)


def _total(payload: Any) -> int | None:
    if isinstance(payload, dict) and isinstance(payload.get("pagination"), dict):
        total = payload["pagination"].get("total")
        return total if isinstance(total, int) else None
    return None


def _model(model: type[M], row: Any, operation: str) -> M:
    try:
        return model.model_validate(row)
    except ValidationError as exc:
        raise shape_error(SYSTEM, operation, exc) from None


def client_for(spec: WiseflowSpec, secrets: ResolvedSecrets) -> WiseflowClient:
    """The Institution's WISEflow client; raises SecretMissing naming the key (before any connection)."""
    field_path, name = "spec.wiseflow.credentialsSecretRef", spec.credentialsSecretRef.name
    client_id = secrets.value(field_path, name, "clientId")
    client_secret = secrets.value(field_path, name, "clientSecret")
    return WiseflowClient(spec.baseUrl, client_id, client_secret)
