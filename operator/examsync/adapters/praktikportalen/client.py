"""Praktikportalen API client (contracts/praktikportalen.md, an assumed contract)."""

from __future__ import annotations

from urllib.parse import quote

import httpx
from pydantic import ValidationError

from examsync.adapters.errors import InvalidResponse
from examsync.adapters.http import UpstreamClient
from examsync.domain.wiseflow import Period

SYSTEM = "praktikportalen"


class PraktikportalenClient:
    def __init__(
        self, base_url: str, api_key: str, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.http = UpstreamClient(
            SYSTEM, base_url, headers={"Authorization": f"Bearer {api_key}"}, transport=transport
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def period(self, licence: str, period_number: str) -> Period | None:
        """One internship period with its supervisors; None when the licence has no such period."""
        path = f"/v1/licenses/{quote(licence, safe='')}/periods/{quote(period_number, safe='')}"
        response = await self.http.request("GET", path, operation="get period", accept=frozenset({404}))
        if response.status_code == 404:
            return None
        try:
            return Period.model_validate_json(response.content)
        except ValidationError as exc:
            # name where the shape broke, never the value (supervisor fields are personal data)
            fields = sorted(
                {".".join(str(p) for p in e["loc"] if not isinstance(p, int)) or "body" for e in exc.errors()}
            )[:5]
            raise InvalidResponse(
                SYSTEM,
                "get period",
                f"unexpected response shape at {', '.join(fields)}",
                response.status_code,
            ) from None
