"""The client every adapter uses: one system, one credential, one run or longer.

It composes the HTTP layer's units: the breaker before a call, `retry` around its attempts, the
call's `deadline` over each attempt, `transport` for each request (allowlist, limits, metrics),
`body` for reading the answer within its cap, and the auth the adapter gives it (httpx.Auth).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict
from urllib.parse import urlsplit

import httpx
from aiolimiter import AsyncLimiter

from examsync.adapters.errors import InvalidResponse
from examsync.adapters.upstream import observe
from examsync.adapters.upstream.body import (
    ACCEPT_ENCODING,
    DEFAULT_MAX_BODY_BYTES,
    BodyRefused,
    plain_response,
    read_body,
)
from examsync.adapters.upstream.breaker import CircuitBreaker
from examsync.adapters.upstream.deadline import CallDeadline
from examsync.adapters.upstream.defaults import DEFAULTS
from examsync.adapters.upstream.limits import HOST_LIMITS, HostLimits
from examsync.adapters.upstream.retry import (
    AttemptFailed,
    RetryPolicy,
    deadline_failure,
    retrying,
    status_failure,
    transport_failure,
)
from examsync.adapters.upstream.transport import EXCHANGE, Exchange, GuardedTransport, wire_for

USER_AGENT = "examsync"


class ClientOptions(TypedDict, total=False):
    """What an adapter's client may be given instead of the defaults (tests and benchmarks do)."""

    retry: RetryPolicy
    limits: HostLimits
    breaker: CircuitBreaker
    transport: httpx.AsyncBaseTransport


class UpstreamClient:
    """An httpx client for one system and one credential.

    `auth` (an httpx.Auth: basic credentials, or a bearer token fetched through this very client)
    is applied to every request unless a request says `authenticate=False` (a token request)."""

    def __init__(
        self,
        system: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        timeout: httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        limits: HostLimits | None = None,
        breaker: CircuitBreaker | None = None,
        rate_limiter: AsyncLimiter | tuple[AsyncLimiter, ...] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_body: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.system = system
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc
        self.auth = auth
        defaults = DEFAULTS.get()
        self.retry = retry or defaults.retry
        self.limits = limits or HOST_LIMITS
        self.breaker = breaker or CircuitBreaker()
        self.max_body = max_body
        rate_limiters = rate_limiter if isinstance(rate_limiter, tuple) else ((rate_limiter,) if rate_limiter else ())
        wire = transport or wire_for(self.base_url, defaults.ca_bundle)
        self._transport = GuardedTransport(system, wire, self.limits, rate_limiters)
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
                "Accept-Encoding": ACCEPT_ENCODING,
                **(headers or {}),
            },
            timeout=timeout or defaults.timeout,
            transport=self._transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> UpstreamClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        accept: frozenset[int] = frozenset({404}),
        idempotent: bool = True,
        authenticate: bool = True,
    ) -> httpx.Response:
        """Send one request with the retry rules; return a 2xx or an accepted status (its body
        read, within the size cap), raise otherwise (an UpstreamError).

        `idempotent=False` (a create): the server may have stored a write whose answer was lost,
        so only 429 and failures before sending are retried; a timeout, a dropped connection or a
        5xx after sending raises at once and the caller looks the object up before writing again.
        """
        self.breaker.ensure_closed(self.system, operation)
        exchange = Exchange(operation, CallDeadline(self.retry.max_elapsed))
        auth = self.auth if authenticate else None

        def retried(failure: AttemptFailed) -> None:
            observe.retried(self.system, failure.reason)

        try:
            async for attempt in retrying(self.retry, exchange.deadline, retried):
                with attempt:
                    request = self._client.build_request(
                        method,
                        path,
                        params=params,
                        json=json,
                        data=data,
                        headers=headers,
                        extensions={EXCHANGE: exchange},
                    )
                    response = await self._attempt(request, exchange, auth, accept, idempotent)
        except AttemptFailed as failed:
            self.breaker.failure(failed.error)
            raise failed.error from None
        self.breaker.success()
        return response

    async def _attempt(
        self,
        request: httpx.Request,
        exchange: Exchange,
        auth: httpx.Auth | None,
        accept: frozenset[int],
        idempotent: bool,
    ) -> httpx.Response:
        """One send and its whole body within the call's deadline: at the deadline an attempt
        still waiting or receiving is abandoned and its connection closed."""
        operation = exchange.operation
        try:
            async with exchange.deadline.scope():
                response = await self._client.send(request, auth=auth, stream=True)
                try:
                    content = await read_body(response, self.max_body)
                except BodyRefused as exc:  # the same answer would come again: not retried
                    raise InvalidResponse(self.system, operation, str(exc), response.status_code) from None
                finally:
                    await response.aclose()  # unread, the connection is closed, not reused
        except TimeoutError:
            raise deadline_failure(self.system, operation) from None
        except httpx.TransportError as exc:
            raise transport_failure(self.system, operation, exc, idempotent) from None
        answer = plain_response(response, content)
        if answer.status_code < 400 or answer.status_code in accept:
            return answer
        raise status_failure(self.system, operation, answer, idempotent)


class UpstreamAdapter:
    """An adapter's client: its system's operations over one UpstreamClient, closed with it."""

    def __init__(self, http: UpstreamClient) -> None:
        self.http = http

    async def aclose(self) -> None:
        await self.http.aclose()


__all__ = [
    "HOST_LIMITS",
    "CircuitBreaker",
    "ClientOptions",
    "HostLimits",
    "RetryPolicy",
    "UpstreamAdapter",
    "UpstreamClient",
]
