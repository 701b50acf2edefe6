"""The metrics of the HTTP layer: each request to an upstream once, by its outcome, and each retry
by its cause (`examsync_upstream_requests_total`, `..._duration_seconds`, `examsync_retries_total`)."""

from __future__ import annotations

import asyncio

import httpx

from examsync import metrics


def request(system: str, operation: str, outcome: str, seconds: float) -> None:
    """One request: `outcome` is its HTTP status, "timeout" or "network"."""
    metrics.observe_upstream(system, operation, outcome, seconds)


def retried(system: str, reason: str) -> None:
    metrics.RETRIES.labels(system, reason).inc()


def failure_outcome(exc: BaseException, deadline_passed: bool) -> str | None:
    """The outcome a request that failed with `exc` is counted as; None: not counted (cancelled
    from outside, not by its call's deadline)."""
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.TransportError):
        return "network"
    if isinstance(exc, asyncio.CancelledError | TimeoutError) and deadline_passed:
        return "timeout"
    return None
