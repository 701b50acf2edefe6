"""Praktikportalen API client (contracts/praktikportalen.md, an assumed contract)."""

from __future__ import annotations

from typing import Unpack
from urllib.parse import quote

from pydantic import ValidationError

from examsync.adapters.upstream.client import ClientOptions, UpstreamAdapter, UpstreamClient
from examsync.adapters.upstream.decode import shape_error
from examsync.domain.wiseflow import Period

SYSTEM = "praktikportalen"


class PraktikportalenClient(UpstreamAdapter):
    def __init__(self, base_url: str, api_key: str, **options: Unpack[ClientOptions]) -> None:
        super().__init__(UpstreamClient(SYSTEM, base_url, headers={"Authorization": f"Bearer {api_key}"}, **options))

    async def period(self, licence: str, period_number: str) -> Period | None:
        """One internship period with its supervisors; None when the licence has no such period."""
        path = f"/v1/licenses/{quote(licence, safe='')}/periods/{quote(period_number, safe='')}"
        response = await self.http.request("GET", path, operation="get period", accept=frozenset({404}))
        if response.status_code == 404:
            return None
        try:
            return Period.model_validate_json(response.content)
        except ValidationError as exc:
            # names where the shape broke, never the value (supervisor fields are personal data)
            raise shape_error(SYSTEM, "get period", exc, response.status_code) from None
