"""Status conditions in the Kubernetes/Flux style (kstatus: Ready, Reconciling, Stalled).

``set_condition`` moves ``lastTransitionTime`` only when a condition's status changes, so it says
since when a state holds; the list keeps the order Ready, Reconciling, Stalled.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from examsync.api.timestamps import Timestamp


class ConditionType(StrEnum):
    READY = "Ready"  # the last run's outcome
    RECONCILING = "Reconciling"  # a run is going (or why none is)
    STALLED = "Stalled"  # what retrying will not fix


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionReason(StrEnum):
    """Why a condition has its status (CamelCase, as Kubernetes wants them); docs/troubleshooting.md
    has a section for each."""

    SUCCEEDED = "Succeeded"
    PROGRESSING = "Progressing"
    IDLE = "Idle"
    SUSPENDED = "Suspended"
    ITEMS_FAILED = "ItemsFailed"
    UPSTREAM_UNAVAILABLE = "UpstreamUnavailable"
    SECRET_MISSING = "SecretMissing"
    SECRET_UNREADABLE = "SecretUnreadable"
    SECRET_NOT_ALLOWED = "SecretNotAllowed"
    INVALID_SPEC = "InvalidSpec"
    UNAUTHORIZED = "Unauthorized"
    FORBIDDEN = "Forbidden"
    HOST_NOT_ALLOWED = "HostNotAllowed"
    INTERNAL_ERROR = "InternalError"


ORDER = tuple(ConditionType)
MAX_MESSAGE = 1024

# In the CRD a type or reason is a plain string: a later version may add one, and its status must
# not be refused by the schema of an earlier CRD still installed (several releases, one CRD).
_STRING = WithJsonSchema({"type": "string"})


class Condition(BaseModel):
    """One aspect of the Institution's state (kstatus)."""

    model_config = ConfigDict(frozen=True)

    type: Annotated[ConditionType, _STRING] = Field(description=f"The condition: {', '.join(ConditionType)}.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: Annotated[ConditionReason, _STRING] | None = Field(
        default=None, description=f"Why, in CamelCase: {', '.join(ConditionReason)}."
    )
    message: str = Field(default="", description="What happened, for a person (counts, the error; no personal data).")
    lastTransitionTime: Timestamp | None = Field(
        default=None, description="When the status last changed (a new message or reason does not move it)."
    )
    observedGeneration: int | None = Field(
        default=None, description="The spec's metadata.generation this condition was set for."
    )


def get_condition(conditions: Sequence[Condition] | None, type_: ConditionType) -> Condition | None:
    for condition in conditions or ():
        if condition.type is type_:
            return condition
    return None


def is_true(conditions: Sequence[Condition] | None, type_: ConditionType) -> bool:
    condition = get_condition(conditions, type_)
    return condition is not None and condition.status is ConditionStatus.TRUE


def set_condition(
    conditions: Sequence[Condition] | None,
    type_: ConditionType,
    status: ConditionStatus,
    reason: ConditionReason,
    message: str,
    *,
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    """A new list with ``type_`` set; the others are kept, in the usual order."""
    previous = get_condition(conditions, type_)
    transition = now
    if previous is not None and previous.status is status and previous.lastTransitionTime is not None:
        transition = previous.lastTransitionTime
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message[:MAX_MESSAGE],
        lastTransitionTime=transition,
        observedGeneration=generation,
    )
    merged = [*(c for c in conditions or () if c.type is not type_), updated]
    return sorted(merged, key=lambda c: ORDER.index(c.type))


def with_generation(conditions: Sequence[Condition] | None, generation: int | None) -> list[Condition]:
    """The same conditions, each marked as observed at ``generation`` (values unchanged)."""
    if generation is None:
        return list(conditions or ())
    return [c.model_copy(update={"observedGeneration": generation}) for c in conditions or ()]
