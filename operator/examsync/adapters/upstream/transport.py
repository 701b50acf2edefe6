"""Every request a client sends, one by one (a token request and a re-send after a 401 too).

Per request: its host checked against the allowlist, a slot under the host's limits taken and
held until its answer's body is read or given up, its call's deadline started at the first send,
and the request counted and observed in the metrics. Requests then go out through `wire` (httpx's
own transport, see `wire_for`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from aiolimiter import AsyncLimiter

from examsync.adapters.upstream import allowlist, observe
from examsync.adapters.upstream.deadline import CallDeadline
from examsync.adapters.upstream.limits import HostLimits

EXCHANGE = "examsync.exchange"  # the request extension naming the call a request belongs to


@functools.cache
def _tls_context(ca_bundle: str) -> ssl.SSLContext:
    """One TLS context per CA bundle for every client: loading it costs ~20 ms, clients are made per run."""
    return ssl.create_default_context(cafile=ca_bundle)


def wire_for(base_url: str, ca_bundle: str) -> httpx.AsyncHTTPTransport:
    """httpx's transport for a client of `base_url`, through the proxy the environment names for
    its host (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, unless NO_PROXY covers it), as httpx's default is."""
    parts = urlsplit(base_url)
    proxies = urllib.request.getproxies_environment()
    bypassed = urllib.request.proxy_bypass(parts.hostname or "")
    proxy = None if bypassed else proxies.get(parts.scheme) or proxies.get("all")
    return httpx.AsyncHTTPTransport(verify=_tls_context(ca_bundle), proxy=proxy)


@dataclass(frozen=True)
class Exchange:
    """What the transport needs of the call a request belongs to."""

    operation: str
    deadline: CallDeadline


class GuardedTransport(httpx.AsyncBaseTransport):
    """One client's requests to one system; `rate_limiters` are the client's own (a credential's)."""

    def __init__(
        self,
        system: str,
        wire: httpx.AsyncBaseTransport,
        limits: HostLimits,
        rate_limiters: tuple[AsyncLimiter, ...] = (),
    ) -> None:
        self.system = system
        self.wire = wire
        self.limits = limits
        self.rate_limiters = rate_limiters

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        exchange = request.extensions[EXCHANGE]
        assert isinstance(exchange, Exchange)
        allowlist.check(self.system, str(request.url), self.limits.allowlist)
        started = time.monotonic()
        held = contextlib.AsyncExitStack()
        try:
            await held.enter_async_context(self.limits.slot(request.url.netloc.decode("ascii"), self.rate_limiters))
            exchange.deadline.start()
            response = await self.wire.handle_async_request(request)
        except BaseException as exc:
            await held.aclose()
            self._observe(exchange, observe.failure_outcome(exc, exchange.deadline.passed), started)
            raise

        async def done(failure: BaseException | None) -> None:
            await held.aclose()
            outcome = (
                str(response.status_code)
                if failure is None
                else observe.failure_outcome(failure, exchange.deadline.passed)
            )
            self._observe(exchange, outcome, started)

        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _HeldStream(response.stream, done)
        return response

    def _observe(self, exchange: Exchange, outcome: str | None, started: float) -> None:
        if outcome is not None:
            observe.request(self.system, exchange.operation, outcome, time.monotonic() - started)

    async def aclose(self) -> None:
        await self.wire.aclose()


Done = Callable[[BaseException | None], Awaitable[None]]


class _HeldStream(httpx.AsyncByteStream):
    """An answer's body while it is read; closing it lets its slot go and observes the request
    (as a timeout or network error when reading failed so)."""

    def __init__(self, stream: httpx.AsyncByteStream, done: Done) -> None:
        self._stream = stream
        self._done: Done | None = done
        self._failure: BaseException | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except (Exception, asyncio.CancelledError) as exc:
            self._failure = exc
            raise

    async def aclose(self) -> None:
        done, self._done = self._done, None
        try:
            await self._stream.aclose()
        finally:
            if done is not None:
                await done(self._failure)
