"""How requests go over the network (`wire_for`): aiohttp's client under the httpx API.

httpx's own transport (httpcore, h11, anyio) cost about half of the CPU time of a run that
creates thousands of tests; aiohttp's client (its HTTP parser is C) does the same work for a
fraction of it. Through a proxy (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, unless NO_PROXY covers the
host) requests go through httpx's own transport, as they did before.

What a failure means for the retry rules (`adapters/http.py`) is kept exact: only a connection
that was never made (refused, DNS, TLS, connect timeout) is reported as "not sent"
(httpx.ConnectError / ConnectTimeout); a connection dropped or a timeout after the request went
out is a read error or read timeout, so a create is never sent twice. (httpx-aiohttp's transport
reports a dropped connection as a connect timeout, which would let a create be retried.)

Bodies are not decompressed here (`body.read_body` inflates within the size cap), no cookies are
kept, redirects are not followed, and the URL is sent exactly as httpx encoded it.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import urllib.request
import weakref
from collections.abc import AsyncIterator
from typing import NoReturn
from urllib.parse import urlsplit

import aiohttp
import httpx
from yarl import URL


@functools.cache
def _tls_context(ca_bundle: str) -> ssl.SSLContext:
    """One TLS context per CA bundle for every client: loading it costs ~20 ms, clients are made per run."""
    return ssl.create_default_context(cafile=ca_bundle)


def wire_for(base_url: str, ca_bundle: str) -> httpx.AsyncBaseTransport:
    """The transport for a client of `base_url`: aiohttp's, or httpx's own through the proxy the
    environment names for its host (as httpx's default would)."""
    parts = urlsplit(base_url)
    proxies = urllib.request.getproxies_environment()
    bypassed = urllib.request.proxy_bypass(parts.hostname or "")
    proxy = None if bypassed else proxies.get(parts.scheme) or proxies.get("all")
    if proxy:
        return httpx.AsyncHTTPTransport(verify=_tls_context(ca_bundle), proxy=proxy)
    return AiohttpTransport(_tls_context(ca_bundle))


def _mapped(exc: aiohttp.ClientError) -> httpx.TransportError:
    """The httpx error that means the same for whether the request was sent."""
    message = f"{type(exc).__name__}: {exc}"
    # never connected: nothing was sent
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message)
    # connected: the request may have been sent (and a write stored)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError | aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(message)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return httpx.UnsupportedProtocol(message)
    return httpx.ReadError(message)


def _raise(exc: aiohttp.ClientError) -> NoReturn:
    raise _mapped(exc) from None  # aiohttp's message may hold the URL; the cause adds nothing


class _Body(httpx.AsyncByteStream):
    """A response body as it arrives (aiohttp pauses reading while its buffer holds 64 KiB)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except aiohttp.ClientError as exc:
            _raise(exc)

    async def aclose(self) -> None:
        # a body read to its end gives the connection back to the pool; any other is closed
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


KEEPALIVE_SECONDS = 15.0  # an idle connection is closed after this
# what aiohttp buffers of a body per connection before it stops reading (twice this): a body
# waiting for a large-body slot (`body.BodyBudget`) holds little beyond its free allowance
# (bench/big_body.py every-detail: 90 MiB peak with 16 KiB, 102 MiB with aiohttp's 64 KiB)
READ_BUFFER = 16 * 1024


class _SharedSession:
    """One aiohttp session, and so one connection pool, for every client of an event loop that
    trusts the same CAs: requests to one host reuse its connections whichever Institution (and
    credential) sends them, so a shared FS host sees at most as many connections as requests
    under way (its cap), not a pool per Institution, and each connection's TLS handshake is paid
    once. It closes when the last client using it closes (so between runs nothing is held)."""

    def __init__(self, ssl_context: ssl.SSLContext | bool) -> None:
        connector = aiohttp.TCPConnector(limit=0, ssl=ssl_context, keepalive_timeout=KEEPALIVE_SECONDS)
        self.session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            trust_env=False,
            read_bufsize=READ_BUFFER,
        )
        self.users = 0


# event loop -> TLS context -> the session its clients share
_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[ssl.SSLContext | bool, _SharedSession]] = (
    weakref.WeakKeyDictionary()
)


def _take(ssl_context: ssl.SSLContext | bool) -> _SharedSession:
    sessions = _SHARED.setdefault(asyncio.get_running_loop(), {})
    shared = sessions.get(ssl_context)
    if shared is None or shared.session.closed:
        shared = sessions[ssl_context] = _SharedSession(ssl_context)
    shared.users += 1
    return shared


async def _give_back(shared: _SharedSession, ssl_context: ssl.SSLContext | bool) -> None:
    shared.users -= 1
    if shared.users > 0:
        return
    sessions = _SHARED.get(asyncio.get_running_loop(), {})
    if sessions.get(ssl_context) is shared:
        del sessions[ssl_context]  # a client starting now opens a new one
    await shared.session.close()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """A client's requests over the session its event loop shares (taken on the first request,
    given back on closing).

    The per-host concurrency caps are the HTTP layer's (`HostLimits`); the pool itself is
    unbounded so it never queues a request the caps let through."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._shared: _SharedSession | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._shared is None:
            self._shared = _take(self._ssl)
        timeout = request.extensions.get("timeout", {})
        body = await request.aread()
        try:
            response = await self._shared.session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        except aiohttp.ClientError as exc:
            _raise(exc)
        reason = (response.reason or "").encode("latin-1", "replace")
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_Body(response),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )

    async def aclose(self) -> None:
        shared, self._shared = self._shared, None
        if shared is not None:
            await _give_back(shared, self._ssl)
