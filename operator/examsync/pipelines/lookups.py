"""A per-run memo of upstream look-ups (is this person a user?), single-flight across items."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

from examsync.adapters.errors import UpstreamError
from examsync.errors import RunStoppingError

K = TypeVar("K")
V = TypeVar("V")


class LookupCache(Generic[K, V]):
    """One look-up per key per run, shared by every item that asks while it is in flight.

    A failed look-up is not remembered: it fails the item that started it; an item that only
    shared it asks once more on its own, unless the error stops the run (no point asking).
    """

    def __init__(self, fetch: Callable[[K], Awaitable[V]]) -> None:
        self._fetch = fetch
        self._tasks: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K, *, retried: bool = False) -> V:
        task = self._tasks.get(key)
        owner = task is None
        if task is None:
            task = self._tasks[key] = asyncio.ensure_future(self._fetch(key))
        try:
            return await asyncio.shield(task)
        except UpstreamError as exc:
            if self._tasks.get(key) is task:
                del self._tasks[key]
            if owner or retried or isinstance(exc, RunStoppingError):
                raise
            return await self.get(key, retried=True)

    def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()


async def users_found(users: LookupCache[str, int | None], people: Iterable[str]) -> list[int]:
    """The user ids of those of `people` (looked up through `users`) who are users: in the order
    given, each once."""
    found = await asyncio.gather(*(users.get(person) for person in people))
    return list(dict.fromkeys(user_id for user_id in found if user_id is not None))
