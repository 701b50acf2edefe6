"""WISEflow API client (contracts/wiseflow.md; WISEflow's OpenAPI description is the authority):
OAuth2 client credentials (`auth`), each operation's request and answer as typed models (`models`), paging,
and a client-side rate limit per credential that stays under WISEflow's own."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TypeVar, Unpack
from urllib.parse import quote

import httpx
from aiolimiter import AsyncLimiter
from pydantic import BaseModel, ValidationError

from examsync.adapters.errors import ClientError, InvalidResponse
from examsync.adapters.upstream import paging
from examsync.adapters.upstream.client import ClientOptions, UpstreamAdapter, UpstreamClient
from examsync.adapters.upstream.decode import shape_error, upstream_text
from examsync.adapters.upstream.limits import per_loop
from examsync.adapters.wiseflow.auth import WiseflowClientCredentials
from examsync.adapters.wiseflow.models import (
    AddAssessor,
    AssessorAnswer,
    CreatedFlow,
    CreateFlow,
    DatesPatch,
    Envelope,
    ExternalSourceAnswer,
    FlowItem,
    FlowSearch,
    MetadataAnswer,
    MetadataPut,
    NewExternalSource,
    NoData,
    Page,
    Request,
    UserAnswer,
    UserWrite,
    WrittenUser,
)
from examsync.domain.wiseflow import Assessor, FlowSource, FoundFlow, Window

M = TypeVar("M", bound=BaseModel)

SYSTEM = "wiseflow"
PAGE_LIMIT = 100  # the most /flows/search and /users/search give per page
ASSESSOR_PAGE_LIMIT = 50  # the most GET /flows/{flowId}/assessors gives per page

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
    return per_loop(
        _LIMITERS,
        f"{base_url}|{per_second}|{per_minute}|{credential}",
        lambda: (
            limiter_under(per_second, 1.0, max(1, per_second // 20)),
            limiter_under(per_minute, 60.0, max(1, per_minute // 25)),
        ),
    )


class WiseflowClient(UpstreamAdapter):
    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        per_second: int = PER_SECOND,
        per_minute: int = PER_MINUTE,
        **options: Unpack[ClientOptions],
    ) -> None:
        limiters = shared_limiters(base_url, client_id, per_second, per_minute)
        super().__init__(UpstreamClient(SYSTEM, base_url, rate_limiter=limiters, **options))
        self.http.auth = WiseflowClientCredentials(self.http, client_id, client_secret)

    async def _call(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        json: Request | None = None,
        params: Mapping[str, str] | None = None,
        accept: frozenset[int] = frozenset(),
        idempotent: bool = True,
        flow_write: bool = False,
    ) -> httpx.Response:
        """One request with a bearer token. `flow_write`: a change to one flow, which WISEflow
        refuses with 403 when the flow may not be changed (archived, allocated from a SIS); that
        is the item's failure, not the credential's (a 403 elsewhere stays an AuthError)."""
        response = await self.http.request(
            method,
            path,
            operation=operation,
            json=json.body() if json is not None else None,
            params=params,
            accept=accept | {403} if flow_write else accept,
            idempotent=idempotent,
        )
        if flow_write and response.status_code == 403:
            raise ClientError(SYSTEM, operation, "", 403, upstream=upstream_text(response))
        return response

    async def _pages(
        self, model: type[M], path: str, operation: str, limit: int, *, method: str = "GET", json: Request | None = None
    ) -> list[M]:
        """Every page of a paged operation, within the paging bounds (`paging.read_all_pages`)."""

        async def page_at(offset: int) -> paging.Page:
            response = await self._call(
                method, path, operation, json=json, params={"offset": str(offset), "limit": str(limit)}
            )
            page = _parsed(Page[list[model]], response, operation)  # type: ignore[valid-type]
            return paging.Page(page.data, page.pagination.total if page.pagination is not None else None)

        rows: list[M] = await paging.read_all_pages(page_at, limit, system=SYSTEM, operation=operation)
        return rows

    # --- flows ---------------------------------------------------------------------------------

    async def search_flows(self, search: FlowSearch) -> list[FoundFlow]:
        items = await self._pages(FlowItem, "/flows/search", "search flows", PAGE_LIMIT, method="POST", json=search)
        return [item.found() for item in items]

    async def create_flow(self, title: str, subtitle: str, flow_type: int, managers: list[int]) -> int:
        body = CreateFlow(title=title, subTitle=subtitle, type=flow_type, managers=managers)
        # never resent after it may have reached WISEflow: a second send would make a second flow
        response = await self._call("POST", "/license/create/flow", "create flow", json=body, idempotent=False)
        return _parsed(CreatedFlow, response, "create flow").flowId

    async def external_sources(self, flow_id: int) -> list[FlowSource]:
        response = await self._call("GET", f"/flows/{flow_id}/external-sources", "list external sources")
        envelope = _parsed(Envelope[list[ExternalSourceAnswer]], response, "list external sources")
        return [source.source() for source in envelope.data]

    async def add_external_source(self, flow_id: int, reference: str, description: str) -> None:
        """Link a source; a 409 means the reference is there already (an earlier try got through)."""
        body = NewExternalSource(reference=reference, description=description)
        await self._call(
            "POST",
            f"/flows/{flow_id}/external-sources",
            "link external source",
            json=body,
            accept=frozenset({409}),
            flow_write=True,
        )

    async def report_sync(self, flow_id: int, reference: str, ok: bool) -> None:
        outcome = "done" if ok else "fail"
        operation = f"report sync {outcome}"
        response = await self._call(
            "POST",
            f"/flows/{flow_id}/external-sources/{quote(reference, safe='')}/sync/{outcome}",
            operation,
            flow_write=True,
        )
        _parsed(NoData, response, operation)

    async def retitle(self, flow_id: int, title: str, subtitle: str) -> None:
        """Set title and subtitle: GET the metadata, PUT the whole object back with them changed
        (the PUT replaces the object, so a field left out could be cleared)."""
        response = await self._call("GET", f"/flows/{flow_id}/metadata", "get flow metadata")
        current = _parsed(Envelope[MetadataAnswer], response, "get flow metadata").data
        body = MetadataPut(
            title=title,
            subtitle=subtitle,
            code=current.code,
            term=current.term,
            examinationType=current.examinationType,
            purpose=current.purpose,
        )
        await self._call("PUT", f"/flows/{flow_id}/metadata", "update flow metadata", json=body, flow_write=True)

    async def patch_dates(self, flow_id: int, participation: Window | None, marking: Window | None) -> None:
        body = DatesPatch.of(participation, marking)
        await self._call("PATCH", f"/flows/{flow_id}/dates", "update flow dates", json=body, flow_write=True)

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
        return _parsed(UserAnswer, response, "find user").id

    async def upsert_user(self, body: UserWrite) -> tuple[int, bool]:
        """Create or update a licence user; (userId, created). Never resent after it may have been
        stored: the next run's look-up finds the user instead."""
        response = await self._call("POST", "/license/user", "write user", json=body, idempotent=False)
        return _parsed(WrittenUser, response, "write user").userId, response.status_code == 201

    async def assessors(self, flow_id: int) -> list[Assessor]:
        rows = await self._pages(AssessorAnswer, f"/flows/{flow_id}/assessors", "list assessors", ASSESSOR_PAGE_LIMIT)
        return [row.assessor() for row in rows]

    async def add_assessor(self, flow_id: int, user_id: int, assessor_type_id: int) -> None:
        await self._call(
            "POST",
            f"/flows/{flow_id}/assessors",
            "add assessor",
            json=AddAssessor(userId=user_id, assessorTypeId=assessor_type_id),
            idempotent=False,  # never resent: the caller lists the assessors after a failure
            flow_write=True,
        )

    async def remove_assessor(self, flow_id: int, assessor_id: int) -> None:
        await self._call(
            "DELETE",
            f"/flows/{flow_id}/assessors/{assessor_id}",
            "remove assessor",
            accept=frozenset({404}),
            flow_write=True,
        )


def _parsed(model: type[M], response: httpx.Response, operation: str) -> M:
    """The answer as the operation's model; a body of another shape (or not JSON, or nested too
    deep) fails that item only. `success: false` is a refusal: its envelope's text goes with it."""
    try:
        parsed = model.model_validate_json(response.content)
    except ValidationError as exc:
        raise shape_error(SYSTEM, operation, exc, response.status_code) from None
    if getattr(parsed, "success", True) is False:
        raise InvalidResponse(
            SYSTEM, operation, "success is false", response.status_code, upstream=upstream_text(response)
        )
    return parsed
