"""Client for Humio/LogScale's structured ingest API (contracts/sinks.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Unpack

import httpx

from examsync.adapters.upstream.client import (
    CircuitBreaker,
    ClientOptions,
    RetryPolicy,
    UpstreamAdapter,
    UpstreamClient,
)

SYSTEM = "humio"
INGEST_PATH = "/api/v1/ingest/humio-structured"
# An audit sink must never hold a run up: few, short retries (finish() bounds the total anyway).
SINK_RETRY = RetryPolicy(max_attempts=3, max_elapsed=4.0, base_delay=0.2, max_delay=1.0)
SINK_TIMEOUT = httpx.Timeout(5.0, connect=2.0)


def ingest_body(tags: Mapping[str, str], records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One request body: a single tag set and one event per audit record."""
    events = [{"timestamp": record.get("timestamp"), "attributes": dict(record)} for record in records]
    return [{"tags": dict(tags), "events": events}]


class HumioClient(UpstreamAdapter):
    """Posts batches of audit records with an ingest token (Bearer)."""

    def __init__(self, base_url: str, token: str, **options: Unpack[ClientOptions]) -> None:
        options.setdefault("retry", SINK_RETRY)
        options.setdefault("breaker", CircuitBreaker(threshold=3))
        headers = {"Authorization": f"Bearer {token}"}
        super().__init__(UpstreamClient(SYSTEM, base_url, headers=headers, timeout=SINK_TIMEOUT, **options))

    async def ingest(self, tags: Mapping[str, str], records: Sequence[Mapping[str, Any]]) -> None:
        """Send one batch. Raises UpstreamError (the caller counts the records as dropped)."""
        await self.http.request(
            "POST", INGEST_PATH, operation="ingest", json=ingest_body(tags, records), accept=frozenset()
        )
