"""Bearer tokens as httpx.Auth: one fetch at a time for every request waiting (single flight),
renewed before expiry and once after a 401, and not asked for again once the credential was
refused in this client's life (every request would only be refused again).

A subclass says how a token is fetched (`fetch`); it sends the token request through the same
UpstreamClient with `authenticate=False`, so that request has the allowlist, the host's limits,
the retries, the deadline and the metrics of any other."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass

import httpx

from examsync.adapters.errors import AuthError
from examsync.adapters.upstream import observe
from examsync.adapters.upstream.client import UpstreamClient


@dataclass(frozen=True)
class Token:
    value: str
    renew_at: float  # time.monotonic(): a little before the token expires


class BearerTokenAuth(httpx.Auth):
    """The bearer token of the client `http`, which also sends the token requests, fetched with
    a client id and its secret (an API key, a client secret)."""

    def __init__(self, http: UpstreamClient, client_id: str, secret: str) -> None:
        self.http = http
        self.system = http.system
        self.client_id = client_id
        self.secret = secret
        self._token: Token | None = None
        self._lock = asyncio.Lock()
        self._refused: AuthError | None = None

    async def fetch(self) -> Token:
        """A new token. Raises AuthError when the credential is refused."""
        raise NotImplementedError

    def _usable(self, stale: str | None) -> str | None:
        token = self._token
        if token is None or token.value == stale or time.monotonic() >= token.renew_at:
            return None
        return token.value

    async def token(self, stale: str | None = None) -> str:
        """A valid token; `stale` is one the server refused (renewed unless already replaced)."""
        if self._refused is None and (usable := self._usable(stale)) is not None:
            return usable
        async with self._lock:
            if self._refused is not None:
                raise self._refused
            usable = self._usable(stale)
            if usable is None:
                try:
                    self._token = await self.fetch()
                except AuthError as exc:
                    self._refused = exc
                    raise
                usable = self._token.value
            return usable

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            # expired or revoked early: one new token, one more send (a second 401 is an AuthError)
            await _let_go_unread(response)
            observe.retried(self.system, "unauthorized")
            request.headers["Authorization"] = f"Bearer {await self.token(stale=token)}"
            yield request

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("bearer tokens are fetched asynchronously: use an async client")


async def _let_go_unread(response: httpx.Response) -> None:
    """Close an answer that is sent again without reading its body, so its connection and the
    host's slot are let go. httpx reads the whole body of an answer an auth flow sends again
    after, beyond the body cap and budget (and inflating it as gzip); it reads an empty one instead."""
    stream, response.stream = response.stream, httpx.ByteStream(b"")
    assert isinstance(stream, httpx.AsyncByteStream)
    await stream.aclose()
