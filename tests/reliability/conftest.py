"""Fast HTTP defaults for the reliability suite: short timeouts and retry delays, same rules."""

from __future__ import annotations

import httpx
import pytest

from examsync.adapters.upstream.defaults import DEFAULTS, UpstreamDefaults
from examsync.adapters.upstream.retry import RetryPolicy
from tests.support.fleet import TIMEOUT


@pytest.fixture(autouse=True)
def fast_http(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = UpstreamDefaults(
        timeout=httpx.Timeout(TIMEOUT, connect=TIMEOUT),
        retry=RetryPolicy(base_delay=0.01, max_delay=0.05, max_elapsed=10.0),
    )
    monkeypatch.setattr(DEFAULTS, "configured", fast)
