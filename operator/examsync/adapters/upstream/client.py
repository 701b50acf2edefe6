"""The client every adapter uses: one system, one credential, one run or longer.

It composes the HTTP layer's units: the breaker before a call, `retry` around its attempts, the
call's `deadline` over each attempt, `transport` for each request (allowlist, limits, metrics),
`body` for reading the answer within its cap, and the auth the adapter gives it (httpx.Auth).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypedDict
from urllib.parse import urlsplit

import httpx
from aiolimiter import AsyncLimiter
from pydantic_core import to_json

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
from examsync.adapters.upstream.transport import EXCHANGE, Exchange, GuardedTransport
from examsync.adapters.upstream.wire import wire_for

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
        # requests are built and sent here, not by an httpx.AsyncClient: its layers (cookies,
        # redirects, event hooks, URL and header merging) cost a tenth of a request's CPU and
        # none of them is wanted (no upstream sets cookies that matter, none is followed)
        self._headers = httpx.Headers(
            {
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
                "Accept-Encoding": ACCEPT_ENCODING,
                **(headers or {}),
            }
        )
        self._timeout = (timeout or defaults.timeout).as_dict()

    async def aclose(self) -> None:
        await self._transport.aclose()

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
        # a path as the whole URL: httpx would parse it, and then the URL it makes with base_url
        url = self.base_url + path if path.startswith("/") else path

        content: bytes | None = None
        if json is not None:
            # pydantic-core writes the same compact UTF-8 JSON as httpx would, in a quarter of the time
            content = to_json(json)
            headers = {**(headers or {}), "Content-Type": "application/json"}

        async def send() -> httpx.Response:
            merged = self._headers
            if headers:
                merged = self._headers.copy()
                merged.update(headers)
            request = httpx.Request(
                method,
                url,
                params=params,
                content=content,
                data=data,
                headers=merged,
                extensions={EXCHANGE: exchange, "timeout": self._timeout},
            )
            return await self._attempt(request, exchange, auth, accept, idempotent)

        try:
            try:
                response = await send()
            except AttemptFailed as first:
                response = await self._retry(first, send, exchange.deadline)
        except AttemptFailed as failed:
            self.breaker.failure(failed.error)
            raise failed.error from None
        self.breaker.success()
        return response

    async def _retry(
        self, first: AttemptFailed, send: Callable[[], Awaitable[httpx.Response]], deadline: CallDeadline
    ) -> httpx.Response:
        """The attempts after a first one failed, by the retry rules. Most calls end in their first
        attempt, which is sent without them (they cost about a tenth of a request's CPU); here
        that first failure is their first attempt's outcome, so they count and wait as for any."""
        if not first.retryable:
            raise first
        pending: AttemptFailed | None = first

        def retried(failure: AttemptFailed) -> None:
            observe.retried(self.system, failure.reason)

        async for attempt in retrying(self.retry, deadline, retried):
            with attempt:
                if pending is not None:
                    failure, pending = pending, None
                    raise failure
                return await send()
        raise AssertionError("the retry rules end in an answer or an error")

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
                response = await self._send(request, auth)
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

    async def _send(self, request: httpx.Request, auth: httpx.Auth | None) -> httpx.Response:
        """What httpx.AsyncClient.send(stream=True) does for these requests: the auth flow (which
        may send the request again, e.g. after a 401 with a new token), each send through the
        transport; the body is left to read."""
        if auth is None:
            return await self._send_one(request)
        flow = auth.async_auth_flow(request)
        try:
            request = await flow.__anext__()
            while True:
                response = await self._send_one(request)
                try:
                    request = await flow.asend(response)
                except StopAsyncIteration:
                    return response
                except BaseException:
                    await response.aclose()
                    raise
                await response.aclose()
        finally:
            await flow.aclose()

    async def _send_one(self, request: httpx.Request) -> httpx.Response:
        response = await self._transport.handle_async_request(request)
        response.request = request
        return response


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
