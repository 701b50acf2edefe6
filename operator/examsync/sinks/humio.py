"""HumioSink: audit records to Humio/LogScale in batches, never holding up or failing a run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping
from typing import Any

from examsync import metrics
from examsync.adapters.humio.client import HumioClient
from examsync.report import InstitutionReport

log = logging.getLogger("examsync.sinks.humio")

BATCH_SIZE = 500  # records per POST at most
BATCH_SECONDS = 5.0  # a record waits at most about this long before it is sent
CAPACITY = 10_000  # records buffered at most; beyond that they are dropped (and counted)
FINISH_SECONDS = 5.0  # time spent flushing at the end of a run at most


class HumioSink:
    """Buffers records (bounded) and posts them from a background task; `record` never blocks."""

    def __init__(
        self,
        url: str,
        token: str,
        tags: Mapping[str, str],
        *,
        batch_size: int = BATCH_SIZE,
        batch_seconds: float = BATCH_SECONDS,
        capacity: int = CAPACITY,
        finish_seconds: float = FINISH_SECONDS,
    ) -> None:
        self._url = url
        self._token = token
        self._tags = dict(tags)
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.capacity = capacity
        self.finish_seconds = finish_seconds
        self._buffer: deque[dict[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._client: HumioClient | None = None
        self._inflight = 0
        self._warned = False
        self.sent = 0
        self.dropped = 0

    def record(self, record: dict[str, object]) -> None:
        if self._stopping or len(self._buffer) >= self.capacity:
            self._drop(1)
            return
        if self._task is None:
            try:
                self._task = asyncio.get_running_loop().create_task(self._pump(), name="humio-sink")
            except RuntimeError:  # no running loop: nothing could ever send it
                self._drop(1)
                return
        self._buffer.append(dict(record))
        if len(self._buffer) >= self.batch_size:
            self._wake.set()

    async def finish(self, report: InstitutionReport) -> None:
        """Flush what is buffered, spending at most `finish_seconds`; the rest is counted as dropped."""
        self._stopping = True
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
        if self._client is not None:
            await self._client.aclose()

    async def _pump(self) -> None:
        while True:
            if not self._stopping and len(self._buffer) < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.batch_seconds)
                self._wake.clear()
            if not self._buffer:
                if self._stopping:
                    return
                continue
            batch = [self._buffer.popleft() for _ in range(min(self.batch_size, len(self._buffer)))]
            self._inflight = len(batch)
            try:
                await self._send(batch)
                self.sent += len(batch)
            except Exception as exc:  # any trouble: the records are lost, counted, and the run goes on
                self._drop(len(batch))
                if not self._warned:
                    self._warned = True
                    log.warning("audit records not delivered to Humio: %s", exc)
            finally:
                self._inflight = 0

    async def _send(self, batch: list[dict[str, Any]]) -> None:
        if self._client is None:
            self._client = HumioClient(self._url, self._token)
        await self._client.ingest(self._tags, batch)

    def _drop(self, count: int) -> None:
        if count > 0:
            self.dropped += count
            metrics.AUDIT_DROPPED.labels("humio").inc(count)
