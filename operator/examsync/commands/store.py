"""The process's audit history store from the settings, shared by `examsync run` and `examsync sync`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from examsync.settings import Settings

if TYPE_CHECKING:
    from examsync.adapters.auditstore.store import AuditStore


def audit_store(settings: Settings) -> AuditStore | None:
    """The store `audit_db` names (`EXAMSYNC_AUDIT_DB`, `--audit-db`), keeping `audit_retention_days`;
    None when there is none. SQLAlchemy is loaded only when there is one."""
    if settings.audit_db is None:
        return None
    from examsync.adapters.auditstore.store import AuditStore

    return AuditStore(settings.audit_db, retention_days=settings.audit_retention_days)
