"""Client for Humio/LogScale's structured ingest API (contracts/sinks.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from examsync.adapters.upstream.client import CircuitBreaker, RetryPolicy, UpstreamClient

SYSTEM = "humio"
INGEST_PATH = "/api/v1/ingest/humio-structured"
# An audit sink must never hold a run up: few, short retries (finish() bounds the total anyway).
SINK_RETRY = RetryPolicy(max_attempts=3, max_elapsed=4.0, base_delay=0.2, max_delay=1.0)
SINK_TIMEOUT = httpx.Timeout(5.0, connect=2.0)


def ingest_body(tags: Mapping[str, str], records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One request body: a single tag set and one event per audit record."""
    events = [{"timestamp": record.get("timestamp"), "attributes": dict(record)} for record in records]
    return [{"tags": dict(tags), "events": events}]


class HumioClient:
    """Posts batches of audit records with an ingest token (Bearer)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http = UpstreamClient(
            SYSTEM,
            base_url,
            headers={"Authorization": f"Bearer {token}"},
            retry=retry or SINK_RETRY,
            timeout=SINK_TIMEOUT,
            breaker=breaker or CircuitBreaker(threshold=3),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def ingest(self, tags: Mapping[str, str], records: Sequence[Mapping[str, Any]]) -> None:
        """Send one batch. Raises UpstreamError (the caller counts the records as dropped)."""
        await self.http.request(
            "POST", INGEST_PATH, operation="ingest", json=ingest_body(tags, records), accept=frozenset()
        )
