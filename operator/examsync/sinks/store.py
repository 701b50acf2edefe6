"""StoreSink: one run's audit records into the process's audit history store (adapters/auditstore)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from examsync.audit import AuditRecord
from examsync.report import InstitutionReport

if TYPE_CHECKING:  # the store is built (and SQLAlchemy loaded) only where one is configured
    from examsync.adapters.auditstore.store import AuditStore


class StoreSink:
    """Each record becomes a row of its Institution; `record` never blocks and never raises."""

    def __init__(self, store: AuditStore, institution: str) -> None:
        self._store = store
        self._institution = institution  # namespace/name

    def record(self, record: AuditRecord) -> None:
        self._store.take(record, self._institution)

    async def finish(self, report: InstitutionReport) -> None:
        self._store.flush_soon()  # the run is over: no need to wait for a full batch
