"""Run requests: a new value of a request annotation asks for a run now.

Two annotations request a run: our own ``examsync.io/requested-at`` (what ``examsync reconcile``
and ``kubectl annotate`` set) and Flux's ``reconcile.fluxcd.io/requestedAt`` (what Flux users and
their tools set). Each is compared with the value of the same annotation that the last run saw,
kept in ``status.handledRequests``, so that one annotation being handled never makes the other
look new again. ``status.lastHandledRequestedAt`` echoes the value of the request a run handled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from examsync.api.status import InstitutionStatus

REQUESTED_AT = "examsync.io/requested-at"
FLUX_REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
# when both are new at once, our own is the value echoed (what `examsync reconcile --wait` waits for)
ANNOTATIONS = (REQUESTED_AT, FLUX_REQUESTED_AT)

MAX_VALUE = 256  # an annotation value longer than this is no request (status stays small)


@dataclass(frozen=True)
class RunRequests:
    """The request annotations as seen when a run was decided."""

    values: Mapping[str, str] = field(default_factory=dict)  # annotation -> value (present ones only)
    pending: str | None = None  # the value to echo: a request not yet handled


def _handled(status: InstitutionStatus) -> dict[str, str]:
    if status.handledRequests is not None:
        return dict(status.handledRequests)
    # status written before Flux's annotation was honoured: the echo is our annotation's value
    echoed = status.lastHandledRequestedAt
    return {REQUESTED_AT: echoed} if echoed is not None else {}


def read(annotations: Mapping[str, Any] | None, status: InstitutionStatus) -> RunRequests:
    values = {
        name: value
        for name in ANNOTATIONS
        if isinstance(value := (annotations or {}).get(name), str) and value and len(value) <= MAX_VALUE
    }
    handled = _handled(status)
    pending = next((value for name, value in values.items() if handled.get(name) != value), None)
    return RunRequests(values, pending)


def record(status: InstitutionStatus, requests: RunRequests) -> InstitutionStatus:
    """The status after a run decided with ``requests``: every request it saw is handled (the
    value echoed in ``lastHandledRequestedAt`` is ``requests.pending``, set with the run's outcome)."""
    if not requests.values:
        return status
    return status.model_copy(update={"handledRequests": dict(requests.values)})
