"""Status conditions in the Kubernetes/Flux style (kstatus: Ready, Reconciling, Stalled).

A condition is a plain dict as it sits in ``status.conditions``:
``{type, status, reason, message, lastTransitionTime, observedGeneration}``.
``lastTransitionTime`` moves only when ``status`` changes, so it says since when a state holds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
ORDER = (READY, RECONCILING, STALLED)

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"

# reasons (CamelCase, as Kubernetes wants them)
SUCCEEDED = "Succeeded"
PROGRESSING = "Progressing"
IDLE = "Idle"
SUSPENDED = "Suspended"
ITEMS_FAILED = "ItemsFailed"
UPSTREAM_UNAVAILABLE = "UpstreamUnavailable"
SECRET_MISSING = "SecretMissing"
SECRET_UNREADABLE = "SecretUnreadable"
INVALID_SPEC = "InvalidSpec"
UNAUTHORIZED = "Unauthorized"
FORBIDDEN = "Forbidden"
HOST_NOT_ALLOWED = "HostNotAllowed"
SECRET_NOT_ALLOWED = "SecretNotAllowed"
INTERNAL_ERROR = "InternalError"

Condition = dict[str, Any]

_MAX_MESSAGE = 1024


def timestamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def get_condition(conditions: list[Condition] | None, type_: str) -> Condition | None:
    for condition in conditions or []:
        if condition.get("type") == type_:
            return condition
    return None


def is_true(conditions: list[Condition] | None, type_: str) -> bool:
    condition = get_condition(conditions, type_)
    return condition is not None and condition.get("status") == TRUE


def set_condition(
    conditions: list[Condition] | None,
    type_: str,
    status: str,
    reason: str,
    message: str,
    *,
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    """A new list with ``type_`` set; the others are kept, in the usual order."""
    previous = get_condition(conditions, type_)
    transition = timestamp(now)
    if previous is not None and previous.get("status") == status and previous.get("lastTransitionTime"):
        transition = previous["lastTransitionTime"]
    updated: Condition = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message[:_MAX_MESSAGE],
        "lastTransitionTime": transition,
    }
    if generation is not None:
        updated["observedGeneration"] = generation
    others = [c for c in conditions or [] if c.get("type") != type_]
    merged = [*others, updated]
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(merged, key=lambda c: rank.get(str(c.get("type")), len(ORDER)))


def with_generation(conditions: list[Condition] | None, generation: int | None) -> list[Condition]:
    """The same conditions, each marked as observed at ``generation`` (values unchanged)."""
    if generation is None:
        return list(conditions or [])
    return [{**c, "observedGeneration": generation} for c in conditions or []]
