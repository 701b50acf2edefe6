"""Which failed attempts of a call are tried again, and when (contracts/README.md).

Tried again: network errors, timeouts, 5xx and 429; never another 4xx. A write that is not
idempotent (a create) only when it never left this process or on 429: once it was sent, the
server may have stored it although its answer was lost. At most `max_attempts` attempts; before
each, the wait the server asked for (Retry-After, RateLimit-Reset) or full-jitter exponential
backoff capped at `max_delay`; no attempt is begun whose wait would pass the call's deadline.
tenacity runs the loop with these rules as its retry, wait and stop conditions.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from examsync.adapters.errors import AuthError, ClientError, UpstreamError
from examsync.adapters.upstream.deadline import CallDeadline
from examsync.adapters.upstream.decode import upstream_text


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    max_elapsed: float = 60.0  # the call's deadline
    base_delay: float = 0.2
    max_delay: float = 10.0

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff (attempt counts from 1)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


# Failures that happen before a request leaves this process: safe to retry even for a write.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class AttemptFailed(Exception):
    """An attempt that failed in a way worth a retry: `error` is what the call raises when it is
    not tried again, `reason` the retry metric's label, `delay` the wait the server asked for."""

    def __init__(self, error: UpstreamError, reason: str, *, retryable: bool, delay: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.reason = reason
        self.retryable = retryable
        self.delay = delay


def transport_failure(system: str, operation: str, exc: httpx.TransportError, idempotent: bool) -> AttemptFailed:
    retryable = idempotent or isinstance(exc, NOT_SENT)
    if isinstance(exc, httpx.TimeoutException):
        return AttemptFailed(
            UpstreamError(system, operation, f"timed out ({type(exc).__name__})"), "timeout", retryable=retryable
        )
    return AttemptFailed(
        UpstreamError(system, operation, f"network error ({type(exc).__name__})"), "network", retryable=retryable
    )


def deadline_failure(system: str, operation: str) -> AttemptFailed:
    """The call's deadline passed (not a per-read timeout): nothing more is tried."""
    return AttemptFailed(
        UpstreamError(system, operation, "timed out (the call's deadline passed)"), "timeout", retryable=False
    )


def status_failure(system: str, operation: str, response: httpx.Response, idempotent: bool) -> AttemptFailed:
    """The failure an error status stands for; what is never retried is raised at once
    (AuthError for 401/403, ClientError for another 4xx)."""
    status = response.status_code
    upstream = upstream_text(response)
    if status in (401, 403):
        raise AuthError(system, operation, "", status, upstream=upstream)
    if status == 429:
        error = UpstreamError(system, operation, "rate limited", status, upstream=upstream)
        return AttemptFailed(error, "rate_limited", retryable=True, delay=retry_after(response))
    if status >= 500:
        return AttemptFailed(
            UpstreamError(system, operation, "", status, upstream=upstream), "server_error", retryable=idempotent
        )
    raise ClientError(system, operation, "", status, upstream=upstream)


def retry_after(response: httpx.Response) -> float | None:
    for header in ("Retry-After", "RateLimit-Reset"):
        value = response.headers.get(header)
        if value is None:
            continue
        with contextlib.suppress(ValueError):
            return max(0.0, float(value))
    return None


def _failed(state: RetryCallState) -> AttemptFailed:
    assert state.outcome is not None
    failure = state.outcome.exception()
    assert isinstance(failure, AttemptFailed)
    return failure


def retrying(policy: RetryPolicy, deadline: CallDeadline, on_retry: Callable[[AttemptFailed], None]) -> AsyncRetrying:
    """The attempts of one call. An attempt raising a retryable AttemptFailed is tried again
    (`on_retry` is told before the wait); anything else, or the last failure, is raised as is."""

    def wait(state: RetryCallState) -> float:
        failure = _failed(state)
        return failure.delay if failure.delay is not None else policy.backoff(state.attempt_number)

    def stop(state: RetryCallState) -> bool:
        # tenacity computes the wait first: an attempt after it would begin past the deadline
        return state.attempt_number >= policy.max_attempts or deadline.passed_after(state.upcoming_sleep)

    return AsyncRetrying(
        retry=retry_if_exception(lambda exc: isinstance(exc, AttemptFailed) and exc.retryable),
        wait=wait,
        stop=stop,
        before_sleep=lambda state: on_retry(_failed(state)),
        reraise=True,
    )
