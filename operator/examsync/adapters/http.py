"""The HTTP layer every adapter shares: timeouts, retries, per-host limits, circuit breaker, metrics.

Rules (contracts/README.md): retry only network errors, 5xx and 429 (honouring Retry-After or
RateLimit-Reset), with jittered exponential backoff, at most 6 attempts and 60 s per call from the
first send to the last byte (`CallDeadline`); never retry another 4xx; a system that keeps failing
is given up on for the rest of the run. Bodies are read within a size cap (`body`), and error
answers are repeated only as far as `error_text` allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import certifi
import httpx
from aiolimiter import AsyncLimiter
from pydantic import BaseModel, ValidationError

from examsync import hosts, metrics
from examsync.adapters.body import (
    ACCEPT_ENCODING,
    DEFAULT_MAX_BODY_BYTES,
    BodyRefused,
    JsonRefused,
    decode_json,
    json_problem,
    plain_response,
    read_body,
)
from examsync.adapters.error_text import UpstreamText
from examsync.adapters.errors import (
    AuthError,
    CircuitOpen,
    ClientError,
    HostNotAllowed,
    InvalidResponse,
    UpstreamError,
)
from examsync.adapters.transport import AiohttpTransport

M = TypeVar("M", bound=BaseModel)

USER_AGENT = "examsync"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    max_elapsed: float = 60.0
    base_delay: float = 0.2
    max_delay: float = 10.0

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff (attempt counts from 1)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


T = TypeVar("T")


def per_loop(store: dict[tuple[int, str], T], key: str, make: Callable[[], T]) -> T:
    """One object per (running event loop, key), shared by every client in that loop.

    asyncio primitives bind to the loop that first uses them; keying by loop keeps processes
    that run several loops one after another (tests, the CLI) independent."""
    full = (id(asyncio.get_running_loop()), key)
    found = store.get(full)
    if found is None:
        found = store[full] = make()
    return found


@dataclass
class HostLimits:
    """Concurrency caps and request rates per upstream host, shared by every Institution in the process.

    One FS host serves all institutions, so the limits are per host, not per client.
    """

    per_host: int = 8
    rate_per_host: float | None = None  # requests per second per host; None: no rate limit
    overrides: dict[str, int] = field(default_factory=dict)
    allowlist: hosts.HostAllowlist | None = None  # None: the process-wide one (examsync.hosts.current)
    _semaphores: dict[tuple[int, str], asyncio.Semaphore] = field(default_factory=dict)
    _rates: dict[tuple[int, str], AsyncLimiter] = field(default_factory=dict)

    def rate_limiter(self, host: str) -> AsyncLimiter | None:
        rate = self.rate_per_host
        if rate is None:
            return None
        # a one-second window: bursts never exceed the rate
        return per_loop(self._rates, host, lambda: AsyncLimiter(rate, 1.0))

    def semaphore(self, host: str) -> asyncio.Semaphore:
        return per_loop(self._semaphores, host, lambda: asyncio.Semaphore(self.overrides.get(host, self.per_host)))

    def check_allowed(self, system: str, url: str) -> None:
        """The last check before a request leaves (the spec's URLs were checked before the run)."""
        refusal = (self.allowlist or hosts.current()).refusal(url)
        if refusal is not None:
            raise HostNotAllowed(system, "connect", refusal)

    def check_allowed_parts(self, system: str, scheme: str, host: str, port: int | None) -> None:
        """`check_allowed` for a URL already parsed (every request's, by httpx)."""
        refusal = (self.allowlist or hosts.current()).refusal_of(scheme, host, port)
        if refusal is not None:
            raise HostNotAllowed(system, "connect", refusal)


# The process-wide limits; the operator and CLI configure them once at start.
HOST_LIMITS = HostLimits()


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        return default


# Defaults for clients built without their own; the fault and crash tests lower them (module
# attributes in process; EXAMSYNC_HTTP_TIMEOUT, EXAMSYNC_RETRY_BASE_DELAY and
# EXAMSYNC_CALL_DEADLINE for a child process).
DEFAULT_TIMEOUT = httpx.Timeout(_env_float("EXAMSYNC_HTTP_TIMEOUT", 30.0), connect=10.0)
DEFAULT_RETRY = RetryPolicy(base_delay=_env_float("EXAMSYNC_RETRY_BASE_DELAY", 0.2),
                            max_elapsed=_env_float("EXAMSYNC_CALL_DEADLINE", 60.0))

# Failures that happen before a request leaves this process: safe to retry even for a write.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every client: loading the CA bundle costs ~20 ms, clients are made per run.

    The same trust as httpx's default: $SSL_CERT_FILE if set, else certifi's bundle."""
    return ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or certifi.where())


class CircuitBreaker:
    """Opens after `threshold` consecutive failed calls (after their retries) within one run."""

    def __init__(self, threshold: int = 5) -> None:
        self.threshold = threshold
        self.consecutive_failures = 0
        self.opened_by: UpstreamError | None = None

    @property
    def open(self) -> bool:
        return self.opened_by is not None

    def success(self) -> None:
        self.consecutive_failures = 0

    def failure(self, error: UpstreamError) -> None:
        self.consecutive_failures += 1
        if self.consecutive_failures >= self.threshold:
            self.opened_by = error


def _retry_after(response: httpx.Response) -> float | None:
    for header in ("Retry-After", "RateLimit-Reset"):
        value = response.headers.get(header)
        if value is None:
            continue
        with contextlib.suppress(ValueError):
            return max(0.0, float(value))
    return None


RequestHook = Callable[[], Awaitable[None]]


class CallDeadline:
    """One call's budget (RetryPolicy.max_elapsed): wall-clock time from the first send to the
    last byte of the last attempt, backoff included. Waiting for a connection slot before the
    first send does not count; everything after it does."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.when: float | None = None  # loop time; None until the first send

    def scope(self) -> asyncio.Timeout:
        """A scope that ends (TimeoutError) at the deadline, however slowly bytes arrive."""
        return asyncio.timeout_at(self.when)

    def start(self, scope: asyncio.Timeout) -> None:
        if self.when is None:
            self.when = asyncio.get_running_loop().time() + self.budget
            scope.reschedule(self.when)

    def passed_after(self, delay: float) -> bool:
        return self.when is not None and asyncio.get_running_loop().time() + delay >= self.when


@dataclass(frozen=True)
class _Failed:
    """An attempt that failed: the error to raise if it is not tried again."""

    error: UpstreamError
    reason: str  # the retry metric's label
    retryable: bool
    delay: float | None = None  # what the server asked us to wait (Retry-After)


class _NoCookies(httpx.Cookies):
    """Nothing an upstream sets is kept (every upstream authenticates each request by a token or
    key), and no response pays for the cookie jar's parsing."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _CookielessClient(httpx.AsyncClient):
    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        raise TypeError("examsync's upstream clients keep no cookies")


_NO_COOKIES = _NoCookies()


class UpstreamClient:
    """An httpx client for one system and one credential, used for one run or longer."""

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
        rate_limiter: Any | None = None,  # an aiolimiter.AsyncLimiter (or several, in a tuple)
        transport: httpx.AsyncBaseTransport | None = None,
        max_body: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.system = system
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc
        self.retry = retry or DEFAULT_RETRY
        self.limits = limits or HOST_LIMITS
        self.breaker = breaker or CircuitBreaker()
        self.max_body = max_body
        self.rate_limiters: tuple[Any, ...] = (
            rate_limiter if isinstance(rate_limiter, tuple) else ((rate_limiter,) if rate_limiter else ())
        )
        self.calls = 0  # requests sent, retries included (bench and tests read it)
        self._client = _CookielessClient(
            base_url=self.base_url,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", "Accept-Encoding": ACCEPT_ENCODING,
                     **(headers or {})},
            auth=auth,
            timeout=timeout or DEFAULT_TIMEOUT,
            transport=transport or AiohttpTransport(_tls_context()),
            follow_redirects=False,
            verify=_tls_context(),
            event_hooks={"request": [self._check_request]},
        )

    async def _check_request(self, request: httpx.Request) -> None:
        url = request.url
        self.limits.check_allowed_parts(self.system, url.scheme, url.raw_host.decode("ascii"), url.port)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> UpstreamClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _pace(self) -> None:
        """Wait for the request rates (the client's own and its host's), if any are set."""
        host_rate = self.limits.rate_limiter(self.host)
        for limiter in (*self.rate_limiters, *((host_rate,) if host_rate else ())):
            await limiter.acquire()

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
        on_unauthorized: RequestHook | None = None,
        auth_headers: Callable[[], Awaitable[Mapping[str, str]]] | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        """Send one request with the retry rules; return a 2xx or an accepted status (its body
        read, within the size cap), raise otherwise.

        `idempotent=False` (a create): the server may have stored a write whose answer was lost,
        so only 429 and failures before sending are retried; a timeout, a dropped connection or a
        5xx after sending raises at once and the caller looks the object up before writing again.
        """
        if self.breaker.open:
            opened_by = self.breaker.opened_by
            last = f" (last: {opened_by.status_line()})" if opened_by is not None else ""
            raise CircuitOpen(self.system, operation, f"given up for this run after repeated failures{last}")
        self.limits.check_allowed(self.system, self.base_url)
        deadline = CallDeadline(self.retry.max_elapsed)
        reauthenticated = False
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                response = await self._attempt(method, path, operation, deadline, params=params, json=json,
                                               data=data, headers=headers, auth_headers=auth_headers)
            except InvalidResponse as exc:  # a body over the cap: the same answer would come again
                metrics.observe_upstream(self.system, operation, str(exc.status), time.monotonic() - started)
                raise
            except TimeoutError:  # the call's deadline, not a per-read timeout
                failed = _Failed(UpstreamError(self.system, operation, "timed out (the call's deadline passed)"),
                                 "timeout", retryable=False)
                metrics.observe_upstream(self.system, operation, "timeout", time.monotonic() - started)
            except httpx.TimeoutException as exc:
                failed = _Failed(UpstreamError(self.system, operation, f"timed out ({type(exc).__name__})"),
                                 "timeout", retryable=idempotent or isinstance(exc, NOT_SENT))
                metrics.observe_upstream(self.system, operation, "timeout", time.monotonic() - started)
            except httpx.TransportError as exc:
                failed = _Failed(UpstreamError(self.system, operation, f"network error ({type(exc).__name__})"),
                                 "network", retryable=idempotent or isinstance(exc, NOT_SENT))
                metrics.observe_upstream(self.system, operation, "network", time.monotonic() - started)
            else:
                status = response.status_code
                metrics.observe_upstream(self.system, operation, str(status), time.monotonic() - started)
                if status < 400 or status in accept:
                    self.breaker.success()
                    return response
                if status == 401 and on_unauthorized is not None and not reauthenticated:
                    reauthenticated = True
                    metrics.RETRIES.labels(self.system, "unauthorized").inc()
                    await on_unauthorized()
                    continue
                failed = self._status_error(operation, response, idempotent)
            delay = failed.delay if failed.delay is not None else self.retry.backoff(attempt)
            if not failed.retryable or attempt >= self.retry.max_attempts or deadline.passed_after(delay):
                self.breaker.failure(failed.error)
                raise failed.error
            metrics.RETRIES.labels(self.system, failed.reason).inc()
            await asyncio.sleep(delay)

    async def _attempt(
        self,
        method: str,
        path: str,
        operation: str,
        deadline: CallDeadline,
        *,
        params: Mapping[str, str] | None,
        json: Any,
        data: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        auth_headers: Callable[[], Awaitable[Mapping[str, str]]] | None,
    ) -> httpx.Response:
        """One send and its whole body within the call's deadline: at the deadline an attempt
        still waiting or receiving is abandoned and its connection closed (TimeoutError)."""
        async with deadline.scope() as scope:
            extra = dict(headers or {})
            if auth_headers is not None:
                extra.update(await auth_headers())
            # a path as the whole URL: httpx would parse it, and then the URL it makes with base_url
            url = self.base_url + path if path.startswith("/") else path
            request = self._client.build_request(method, url, params=params, json=json, data=data,
                                                 headers=extra)
            async with self.limits.semaphore(self.host):
                if self.rate_limiters or self.limits.rate_per_host is not None:
                    await self._pace()
                deadline.start(scope)
                self.calls += 1
                response = await self._client.send(request, stream=True)
                try:
                    content = await read_body(response, self.max_body)
                except BodyRefused as exc:
                    raise InvalidResponse(self.system, operation, str(exc), response.status_code) from None
                finally:
                    await response.aclose()  # unread, the connection is closed, not reused
        return plain_response(response, content)

    def _status_error(self, operation: str, response: httpx.Response, idempotent: bool) -> _Failed:
        """The failure an error status stands for; what is never retried is raised at once."""
        status = response.status_code
        upstream = upstream_text(response)
        if status in (401, 403):
            raise AuthError(self.system, operation, "", status, upstream=upstream)
        if status == 429:
            error = UpstreamError(self.system, operation, "rate limited", status, upstream=upstream)
            return _Failed(error, "rate_limited", retryable=True, delay=_retry_after(response))
        if status >= 500:
            error = UpstreamError(self.system, operation, "", status, upstream=upstream)
            return _Failed(error, "server_error", retryable=idempotent)
        raise ClientError(self.system, operation, "", status, upstream=upstream)


def upstream_text(response: httpx.Response) -> UpstreamText:
    """The code and message an error answer carries, as far as they may be repeated (never the body)."""
    try:
        payload = decode_json(response.content)
    except JsonRefused:
        return UpstreamText()
    return UpstreamText.from_payload(payload, response.status_code)


_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def shape_error(system: str, operation: str, exc: ValidationError, status: int | None = None) -> InvalidResponse:
    """InvalidResponse naming where the body differs from the contract (field paths, never values;
    a key that is not a field name, i.e. data, is left out too)."""
    problem = json_problem(exc)
    if problem is not None:
        return InvalidResponse(system, operation, problem, status)
    fields = sorted({
        ".".join(p for p in e["loc"] if isinstance(p, str) and _FIELD_NAME.fullmatch(p)) or "body"
        for e in exc.errors()
    })
    return InvalidResponse(system, operation, f"unexpected response shape at {', '.join(fields[:5])}", status)


def parse_json(system: str, operation: str, response: httpx.Response, model: type[M]) -> M:
    """Parse a body into the contract's model; a mismatch (or a body that is not JSON, or is nested
    too deep) is InvalidResponse for that item only."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise shape_error(system, operation, exc, response.status_code) from None


def json_body(system: str, operation: str, response: httpx.Response) -> Any:
    """The JSON document a response holds; InvalidResponse when it is not JSON or nested too deep."""
    try:
        return decode_json(response.content)
    except JsonRefused as exc:
        raise InvalidResponse(system, operation, str(exc), response.status_code) from None


def unwrap_envelope(payload: Any) -> Any:
    """WISEflow's newer endpoints wrap data in {success, data, error}; older ones answer bare objects."""
    if isinstance(payload, dict) and "success" in payload and "data" in payload:
        return payload["data"]
    return payload


__all__ = [
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "HOST_LIMITS",
    "CircuitBreaker",
    "ClientError",
    "HostLimits",
    "RetryPolicy",
    "UpstreamClient",
    "json_body",
    "parse_json",
    "unwrap_envelope",
]
