"""Concurrent work that never outlives its caller."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


async def settle(coroutines: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Run the coroutines as tasks and return their results once every one has ended.

    If this is cancelled, every task is cancelled and waited for before the cancellation goes
    on, so none of them goes on working (or writing) unseen. The first task's exception (in
    order) is raised only after all have ended.
    """
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    cancelled = False
    while True:
        pending = [t for t in tasks if not t.done()]
        if not pending:
            break
        try:
            await asyncio.wait(pending)
        except asyncio.CancelledError:
            cancelled = True
            for task in pending:
                task.cancel()
    if cancelled:
        raise asyncio.CancelledError
    errors = [None if t.cancelled() else t.exception() for t in tasks]  # each retrieved; the first raised
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
    return [t.result() for t in tasks]
