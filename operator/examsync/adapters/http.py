"""The HTTP layer every adapter shares: timeouts, retries, per-host limits, circuit breaker, metrics.

Rules (contracts/README.md): retry only network errors, 5xx and 429 (honouring Retry-After or
RateLimit-Reset), with jittered exponential backoff, at most 6 attempts and 60 s per call; never
retry another 4xx; a system that keeps failing is given up on for the rest of the run.
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
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import certifi
import httpx
from aiolimiter import AsyncLimiter
from pydantic import BaseModel, ValidationError

from examsync import hosts, metrics
from examsync.adapters.errors import (
    AuthError,
    CircuitOpen,
    ClientError,
    HostNotAllowed,
    InvalidResponse,
    UpstreamError,
)

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


# The process-wide limits; the operator and CLI configure them once at start.
HOST_LIMITS = HostLimits()


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        return default


# Defaults for clients built without their own; the fault and crash tests lower them (module
# attributes in process, EXAMSYNC_HTTP_TIMEOUT / EXAMSYNC_RETRY_BASE_DELAY for a child process).
DEFAULT_TIMEOUT = httpx.Timeout(_env_float("EXAMSYNC_HTTP_TIMEOUT", 30.0), connect=10.0)
DEFAULT_RETRY = RetryPolicy(base_delay=_env_float("EXAMSYNC_RETRY_BASE_DELAY", 0.2))

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
    ) -> None:
        self.system = system
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc
        self.retry = retry or DEFAULT_RETRY
        self.limits = limits or HOST_LIMITS
        self.breaker = breaker or CircuitBreaker()
        self.rate_limiters: tuple[Any, ...] = (
            rate_limiter if isinstance(rate_limiter, tuple) else ((rate_limiter,) if rate_limiter else ())
        )
        self.calls = 0  # requests sent, retries included (bench and tests read it)
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
            auth=auth,
            timeout=timeout or DEFAULT_TIMEOUT,
            transport=transport,
            follow_redirects=False,
            verify=_tls_context(),
            event_hooks={"request": [self._check_request]},
        )

    async def _check_request(self, request: httpx.Request) -> None:
        self.limits.check_allowed(self.system, str(request.url))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> UpstreamClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        async with self.limits.semaphore(self.host):
            host_rate = self.limits.rate_limiter(self.host)
            for limiter in (*self.rate_limiters, *((host_rate,) if host_rate else ())):
                await limiter.acquire()
            yield

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
        """Send one request with the retry rules; return a 2xx or an accepted status, raise otherwise.

        `idempotent=False` (a create): the server may have stored a write whose answer was lost,
        so only 429 and failures before sending are retried; a timeout, a dropped connection or a
        5xx after sending raises at once and the caller looks the object up before writing again.
        """
        if self.breaker.open:
            opened_by = self.breaker.opened_by
            raise CircuitOpen(self.system, operation, f"given up for this run after: {opened_by}")
        self.limits.check_allowed(self.system, str(self._client.base_url))
        # The 60 s budget counts from the first send, not from the queue for a connection slot.
        deadline: float | None = None
        reauthenticated = False
        attempt = 0
        while True:
            attempt += 1
            extra = dict(headers or {})
            if auth_headers is not None:
                extra.update(await auth_headers())
            started = time.monotonic()
            delay: float | None = None
            error: UpstreamError
            retryable = True
            try:
                async with self._slot():
                    if deadline is None:
                        deadline = time.monotonic() + self.retry.max_elapsed
                    self.calls += 1
                    response = await self._client.request(
                        method, path, params=params, json=json, data=data, headers=extra,
                        timeout=self._timeout_within(deadline),
                    )
            except httpx.TimeoutException as exc:
                metrics.observe_upstream(self.system, operation, "timeout", time.monotonic() - started)
                error = UpstreamError(self.system, operation, f"timed out ({type(exc).__name__})")
                reason = "timeout"
                retryable = idempotent or isinstance(exc, NOT_SENT)
            except httpx.TransportError as exc:
                metrics.observe_upstream(self.system, operation, "network", time.monotonic() - started)
                error = UpstreamError(self.system, operation, f"network error ({type(exc).__name__})")
                reason = "network"
                retryable = idempotent or isinstance(exc, NOT_SENT)
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
                message = _safe_message(response)
                if status in (401, 403):
                    raise AuthError(self.system, operation, message, status)
                if status == 429:
                    error = UpstreamError(self.system, operation, "rate limited", status)
                    delay = _retry_after(response)
                    reason = "rate_limited"
                elif status >= 500:
                    error = UpstreamError(self.system, operation, message, status)
                    reason = "server_error"
                    retryable = idempotent
                else:
                    raise ClientError(self.system, operation, message, status)
            if delay is None:
                delay = self.retry.backoff(attempt)
            out_of_time = deadline is not None and time.monotonic() + delay >= deadline
            if not retryable or attempt >= self.retry.max_attempts or out_of_time:
                self.breaker.failure(error)
                raise error
            metrics.RETRIES.labels(self.system, reason).inc()
            await asyncio.sleep(delay)


    def _timeout_within(self, deadline: float) -> httpx.Timeout:
        """The client's timeouts, cut so that this attempt ends by the call's deadline."""
        remaining = max(0.001, deadline - time.monotonic())
        t = self._client.timeout

        def cut(value: float | None) -> float:
            return remaining if value is None else min(value, remaining)

        return httpx.Timeout(connect=cut(t.connect), read=cut(t.read), write=cut(t.write), pool=cut(t.pool))


def _safe_message(response: httpx.Response) -> str:
    """A structured error code from the body (`API_KEY_INVALID_KEY`, `unknown_manager`), else the
    HTTP reason phrase. Free text is dropped: it may echo personal data from the request."""
    with contextlib.suppress(ValueError):
        body = response.json()
        if isinstance(body, dict):
            err = body.get("error")
            if isinstance(err, dict):
                err = err.get("code")
            if isinstance(err, str) and _ERROR_CODE.fullmatch(err):
                return err
    return response.reason_phrase or ""


_ERROR_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def shape_error(system: str, operation: str, exc: ValidationError, status: int | None = None) -> InvalidResponse:
    """InvalidResponse naming where the body differs from the contract (field paths, never values)."""
    fields = sorted({".".join(str(p) for p in e["loc"] if not isinstance(p, int)) or "body" for e in exc.errors()})
    return InvalidResponse(system, operation, f"unexpected response shape at {', '.join(fields[:5])}", status)


def parse_json(system: str, operation: str, response: httpx.Response, model: type[M]) -> M:
    """Parse a body into the contract's model; a mismatch is InvalidResponse for that item only."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise shape_error(system, operation, exc, response.status_code) from None


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
    "parse_json",
    "unwrap_envelope",
]
