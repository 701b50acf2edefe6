"""HumioSink: audit records to Humio/LogScale in batches, never holding up or failing a run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from examsync.adapters.humio.client import HumioClient
from examsync.audit import AuditRecord
from examsync.batching import BatchBuffer
from examsync.report import InstitutionReport

BATCH_SIZE = 500  # records per POST at most
BATCH_SECONDS = 5.0  # a record waits at most about this long before it is sent
CAPACITY = 10_000  # records buffered at most; beyond that they are dropped (and counted)
FINISH_SECONDS = 5.0  # time spent flushing at the end of a run at most


class HumioSink:
    """Buffers records (bounded) and posts them from a background task; `record` never blocks.
    A batch Humio refuses or never receives is dropped and counted (one sink per run)."""

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
        self._client: HumioClient | None = None
        self._buffer: BatchBuffer[dict[str, Any]] = BatchBuffer(
            self._send,
            sink="humio",
            target="Humio",
            batch_size=batch_size,
            batch_seconds=batch_seconds,
            capacity=capacity,
            finish_seconds=finish_seconds,
        )

    @property
    def sent(self) -> int:
        return self._buffer.sent

    @property
    def dropped(self) -> int:
        return self._buffer.dropped

    def record(self, record: AuditRecord) -> None:
        self._buffer.put(record.as_json())

    async def finish(self, report: InstitutionReport) -> None:
        """Flush what is buffered, spending at most `finish_seconds`; the rest is counted as dropped."""
        await self._buffer.close()
        if self._client is not None:
            await self._client.aclose()

    async def _send(self, batch: list[dict[str, Any]]) -> None:
        if self._client is None:
            self._client = HumioClient(self._url, self._token)
        await self._client.ingest(self._tags, batch)
