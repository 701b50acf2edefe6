"""Client for FS's DigEks `eksamen` service (contracts/fs.md): list changed assessments, read one."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Unpack
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict

from examsync.adapters.upstream.client import ClientOptions, UpstreamAdapter, UpstreamClient
from examsync.adapters.upstream.decode import json_body, parse_json
from examsync.domain.fs import InvalidSourceData

SYSTEM = "fs"


class ListedAssessment(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    sistEndret: str | None = None


class AssessmentList(BaseModel):
    model_config = ConfigDict(extra="ignore")
    eksamener: list[ListedAssessment]


def encode_query(params: dict[str, str]) -> str:
    """Every value percent-encoded with no safe characters (an offset's `+` would arrive as a space)."""
    return "&".join(f"{key}={quote(value, safe='')}" for key, value in params.items())


def format_cutoff(value: datetime) -> str:
    """ISO-8601 with an explicit offset, to the second."""
    if value.utcoffset() is None:
        raise ValueError("the change cut-off must carry an offset")
    return value.isoformat(timespec="seconds")


class FsClient(UpstreamAdapter):
    """One institution's FS credentials against one FS host (the host's limits are shared)."""

    def __init__(self, base_url: str, username: str, password: str, **options: Unpack[ClientOptions]) -> None:
        super().__init__(UpstreamClient(SYSTEM, base_url, auth=httpx.BasicAuth(username, password), **options))

    async def list_changed(
        self,
        institution_number: str,
        date_from: date,
        date_to: date,
        exam_system: str,
        changed_since: datetime,
    ) -> list[ListedAssessment]:
        """Ids of the assessments FS lists as changed since the cut-off. Raises UpstreamError."""
        query = encode_query(
            {
                "institusjonsnr": institution_number,
                "datofra": date_from.isoformat(),
                "datotil": date_to.isoformat(),
                "eksamenssystem": exam_system.upper(),
                "sistEndret": format_cutoff(changed_since),
            }
        )
        response = await self.http.request("GET", f"/eksamen/liste?{query}", operation="list", accept=frozenset())
        return parse_json(SYSTEM, "list", response, AssessmentList).eksamener

    async def get_assessment(self, exam_system: str, fs_id: str) -> dict[str, Any] | None:
        """The raw detail record, or None when FS answers 404 (the assessment is gone).

        Raises UpstreamError for transport/HTTP trouble and for a body that is not JSON or nested
        too deep (InvalidResponse), and InvalidSourceData for JSON that is not an object.
        """
        path = f"/eksamen/{quote(exam_system.upper(), safe='')}/{quote(fs_id, safe='')}"
        response = await self.http.request("GET", path, operation="get")
        if response.status_code == 404:
            return None
        body = json_body(SYSTEM, "get", response)
        if not isinstance(body, dict):
            raise InvalidSourceData([], "record is not a JSON object")
        return body
