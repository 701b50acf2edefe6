"""Bounded, batched delivery from a background task: `put` never blocks and never raises.

Shared by the Humio sink and the audit history store (contracts/sinks.md): items wait in a bounded
buffer and leave in batches (at most `batch_size` each, or after `batch_seconds`); what cannot be
delivered is counted in examsync_audit_records_dropped_total{sink} and never reaches a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from examsync import metrics

log = logging.getLogger("examsync.sinks")

T = TypeVar("T")


def _never(exc: BaseException) -> bool:
    return False


class BatchBuffer(Generic[T]):
    """Items buffered (at most `capacity`) and sent by `send` from one task started on the first `put`.

    A batch that fails is dropped, unless `retryable` says the failure is passing (a database
    restarting): then it goes back to the front of the buffer and is tried again after a backoff,
    so a short outage loses nothing while the buffer has room. `close` spends at most
    `finish_seconds` on what is left; the rest is counted as dropped.
    """

    def __init__(
        self,
        send: Callable[[list[T]], Awaitable[None]],
        *,
        sink: str,
        target: str,
        batch_size: int,
        batch_seconds: float,
        capacity: int,
        finish_seconds: float,
        retryable: Callable[[BaseException], bool] = _never,
        backoff: tuple[float, float] = (1.0, 30.0),
        describe: Callable[[BaseException], str] = str,
    ) -> None:
        self._send = send
        self.sink = sink
        self.target = target
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.capacity = capacity
        self.finish_seconds = finish_seconds
        self._retryable = retryable
        self._backoff = backoff
        self._describe = describe
        self._buffer: deque[T] = deque()
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight = 0
        self._failing = False
        self.sent = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._buffer)

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    def put(self, item: T) -> None:
        if self._closing.is_set() or len(self._buffer) >= self.capacity:
            self._drop(1)
            return
        if self._task is None:
            try:
                self._task = asyncio.get_running_loop().create_task(self._pump(), name=f"{self.sink}-sink")
            except RuntimeError:  # no running loop: nothing could ever send it
                self._drop(1)
                return
        self._buffer.append(item)
        if len(self._buffer) >= self.batch_size:
            self._wake.set()

    def flush_soon(self) -> None:
        """Send what is buffered now rather than after `batch_seconds`."""
        self._wake.set()

    async def close(self) -> None:
        """Flush what is buffered, spending at most `finish_seconds`; the rest is counted as dropped."""
        self._closing.set()
        self._wake.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=self.finish_seconds)
            if not done:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        self._drop(len(self._buffer) + self._inflight)
        self._buffer.clear()
        self._inflight = 0

    async def _pump(self) -> None:
        delay = self._backoff[0]
        while True:
            if not self._closing.is_set() and len(self._buffer) < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.batch_seconds)
                self._wake.clear()
            if not self._buffer:
                if self._closing.is_set():
                    return
                continue
            batch = [self._buffer.popleft() for _ in range(min(self.batch_size, len(self._buffer)))]
            self._inflight = len(batch)
            try:
                await self._send(batch)
            except Exception as exc:  # any trouble stays here: the run goes on
                self._inflight = 0
                self._warn(exc)
                if not self._retryable(exc) or self._closing.is_set():
                    self._drop(len(batch))
                    if self._closing.is_set():  # no time left to wait for it to come back
                        self._drop(len(self._buffer))
                        self._buffer.clear()
                        return
                    continue
                room = max(0, self.capacity - len(self._buffer))
                self._drop(len(batch) - room)
                self._buffer.extendleft(reversed(batch[:room]))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), delay)
                delay = min(delay * 2, self._backoff[1])
                continue
            self._inflight = 0
            self.sent += len(batch)
            delay = self._backoff[0]
            if self._failing:
                self._failing = False
                log.info("audit records delivered to %s again", self.target, extra={"sink": self.sink})

    def _warn(self, exc: BaseException) -> None:
        if not self._failing:  # once per outage, not once per batch
            self._failing = True
            log.warning(
                "audit records not delivered to %s: %s", self.target, self._describe(exc), extra={"sink": self.sink}
            )

    def _drop(self, count: int) -> None:
        if count > 0:
            self.dropped += count
            metrics.AUDIT_DROPPED.labels(self.sink).inc(count)
