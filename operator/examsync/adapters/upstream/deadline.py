"""One call's deadline: wall-clock time from its first send to the last byte of its last attempt."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class CallDeadline:
    """A call's budget (RetryPolicy.max_elapsed), backoff included. Waiting for a connection slot
    before the first send does not count; everything after it does."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.when: float | None = None  # loop time; None until the first send
        self._scope: asyncio.Timeout | None = None

    @contextlib.asynccontextmanager
    async def scope(self) -> AsyncIterator[None]:
        """One attempt: it ends (TimeoutError) at the deadline, however slowly bytes arrive."""
        async with asyncio.timeout_at(self.when) as scope:
            self._scope = scope
            try:
                yield
            finally:
                self._scope = None

    def start(self) -> None:
        """The first send: the budget runs from now (later sends change nothing)."""
        if self.when is None:
            self.when = asyncio.get_running_loop().time() + self.budget
            if self._scope is not None:
                self._scope.reschedule(self.when)

    def passed_after(self, delay: float) -> bool:
        return self.when is not None and asyncio.get_running_loop().time() + delay >= self.when

    @property
    def passed(self) -> bool:
        return self.passed_after(0.0)
