"""The audit history store (contracts/sinks.md, "Audit history store"): every audit record in a SQL
database, SQLite or PostgreSQL, so "what happened to this assessment, and when" has an answer
without a log platform.

The rest of examsync touches it in three places only:
- `with_audit_store(factory, store)`: the runner's SinkFactory, plus one sink into the store;
- `from_environment()` / `StoreUrl.parse`: `examsync run` (EXAMSYNC_AUDIT_DB) and `examsync sync --audit-db`;
- `AuditStore.start()` / `close()`: once per process (operator startup and cleanup, around a sync).
`examsync history` reads it (`history.py`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from examsync.api.spec import InstitutionSpec
from examsync.auditstore.rows import AuditRow
from examsync.auditstore.store import RETENTION_DAYS, AuditStore, RetentionPass, StoreRunSink
from examsync.auditstore.url import Backend, InvalidStoreUrl, StoreUrl
from examsync.credentials import ResolvedSecrets
from examsync.pipelines.runner import RunSink, SinkFactory

ENV_URL = "EXAMSYNC_AUDIT_DB"
ENV_RETENTION_DAYS = "EXAMSYNC_AUDIT_RETENTION_DAYS"


def parse_retention_days(text: str | None) -> float:
    """Days (a positive number); unset or empty: the default 400."""
    if not text:
        return float(RETENTION_DAYS)
    try:
        days = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of days") from None
    if not days > 0 or days == float("inf"):
        raise ValueError(f"{text!r}: retention needs a positive number of days")
    return days


def from_environment() -> AuditStore | None:
    """The operator's store: EXAMSYNC_AUDIT_DB (unset or empty: none), EXAMSYNC_AUDIT_RETENTION_DAYS.
    Raises InvalidStoreUrl or ValueError, with messages that never hold the URL's password."""
    text = os.environ.get(ENV_URL, "").strip()
    if not text:
        return None
    return AuditStore(StoreUrl.parse(text), retention_days=parse_retention_days(os.environ.get(ENV_RETENTION_DAYS)))


def with_audit_store(factory: SinkFactory | None, store: AuditStore | None) -> SinkFactory | None:
    """`factory`'s sinks, plus one that hands every record of the run to `store`."""
    if store is None:
        return factory

    def build(spec: InstitutionSpec, secrets: ResolvedSecrets, institution: str) -> Sequence[RunSink]:
        sinks: list[RunSink] = list(factory(spec, secrets, institution)) if factory is not None else []
        sinks.append(store.run_sink(institution))
        return sinks

    return build


__all__ = [
    "ENV_RETENTION_DAYS",
    "ENV_URL",
    "AuditRow",
    "AuditStore",
    "Backend",
    "InvalidStoreUrl",
    "RetentionPass",
    "StoreRunSink",
    "StoreUrl",
    "from_environment",
    "parse_retention_days",
    "with_audit_store",
]
