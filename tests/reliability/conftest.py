"""Fast HTTP defaults for the reliability suite: short timeouts and retry delays, same rules."""

from __future__ import annotations

import httpx
import pytest
from reliability_support import TIMEOUT

from examsync.adapters.upstream import client as http


@pytest.fixture(autouse=True)
def fast_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "DEFAULT_TIMEOUT", httpx.Timeout(TIMEOUT, connect=TIMEOUT))
    monkeypatch.setattr(http, "DEFAULT_RETRY", http.RetryPolicy(base_delay=0.01, max_delay=0.05, max_elapsed=10.0))
