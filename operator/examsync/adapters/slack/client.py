"""Client for a Slack incoming webhook (contracts/sinks.md): one JSON POST, Slack answers `ok`."""

from __future__ import annotations

from typing import Any, Unpack
from urllib.parse import urlsplit, urlunsplit

import httpx

from examsync.adapters.errors import InvalidResponse
from examsync.adapters.upstream.client import (
    CircuitBreaker,
    ClientOptions,
    RetryPolicy,
    UpstreamAdapter,
    UpstreamClient,
)
from examsync.api.spec import check_url

SYSTEM = "slack"
SINK_RETRY = RetryPolicy(max_attempts=3, max_elapsed=5.0, base_delay=0.3, max_delay=2.0)
SINK_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class SlackClient(UpstreamAdapter):
    """Posts messages to one webhook. The URL is a secret: it never appears in errors or logs."""

    def __init__(self, webhook_url: str, **options: Unpack[ClientOptions]) -> None:
        parts = urlsplit(check_url(webhook_url))
        base = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        self._path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        options.setdefault("retry", SINK_RETRY)
        options.setdefault("breaker", CircuitBreaker(threshold=2))
        super().__init__(UpstreamClient(SYSTEM, base, timeout=SINK_TIMEOUT, **options))

    async def post(self, message: dict[str, Any]) -> None:
        """Send one message. Raises UpstreamError when Slack does not answer `ok`."""
        response = await self.http.request("POST", self._path, operation="post", json=message, accept=frozenset())
        if response.text.strip() != "ok":
            raise InvalidResponse(SYSTEM, "post", "answer was not ok", response.status_code)
