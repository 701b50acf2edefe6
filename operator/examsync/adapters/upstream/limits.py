"""Concurrency caps and request rates per upstream host, shared by every client in the process.

One FS host serves every Institution, so the limits are per host, not per client; the operator
and the CLI configure the process-wide `HOST_LIMITS` once at start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from aiolimiter import AsyncLimiter

from examsync import hosts

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

    @contextlib.asynccontextmanager
    async def slot(self, host: str, also: Sequence[AsyncLimiter] = ()) -> AsyncIterator[None]:
        """One request to `host` in flight: a place under its cap, then a permit of each rate
        (the host's and `also`, e.g. a credential's), held until the request is done."""
        async with self.semaphore(host):
            host_rate = self.rate_limiter(host)
            for limiter in (*also, *((host_rate,) if host_rate else ())):
                await limiter.acquire()
            yield


HOST_LIMITS = HostLimits()
