"""The HTTP defaults the environment may lower (the fault and crash tests do, for a child process)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import httpx

from examsync.adapters.upstream.retry import RetryPolicy


def from_environment(environ: Mapping[str, str] = os.environ) -> tuple[httpx.Timeout, RetryPolicy]:
    """The default timeout and retry policy: the one place EXAMSYNC_HTTP_TIMEOUT (read timeout),
    EXAMSYNC_RETRY_BASE_DELAY and EXAMSYNC_CALL_DEADLINE (seconds each) are read."""

    def seconds(name: str, default: float) -> float:
        try:
            return float(environ.get(name, "") or default)
        except ValueError:
            return default

    timeout = httpx.Timeout(seconds("EXAMSYNC_HTTP_TIMEOUT", 30.0), connect=10.0)
    retry = RetryPolicy(base_delay=seconds("EXAMSYNC_RETRY_BASE_DELAY", 0.2),
                        max_elapsed=seconds("EXAMSYNC_CALL_DEADLINE", 60.0))
    return timeout, retry
