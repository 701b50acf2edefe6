"""One call's deadline: wall-clock time from its first send to the last byte of its last attempt."""

from __future__ import annotations

import asyncio
from typing import Any


class CallDeadline:
    """A call's budget (RetryPolicy.max_elapsed), backoff included. Waiting for a connection slot
    before the first send does not count; everything after it does."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.when: float | None = None  # loop time; None until the first send
        self._scope: asyncio.Timeout | None = None

    def scope(self) -> _AttemptScope:
        """One attempt (`async with`): it ends (TimeoutError) at the deadline, however slowly bytes arrive."""
        return _AttemptScope(self)

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


class _AttemptScope:
    """asyncio's timeout at the call's deadline, known to the deadline while it lasts (the first
    send moves it from "none yet" to the deadline)."""

    def __init__(self, deadline: CallDeadline) -> None:
        self._deadline = deadline
        self._timeout = asyncio.timeout_at(deadline.when)

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()
        self._deadline._scope = self._timeout

    async def __aexit__(self, *exc: Any) -> None:
        self._deadline._scope = None
        await self._timeout.__aexit__(*exc)  # TimeoutError at the deadline
