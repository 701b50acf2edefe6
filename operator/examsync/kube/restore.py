"""The metrics of an Institution as its status says, exported as soon as the operator sees it.

Metrics live in the process; after a restart they would come back only with each Institution's
next run, hours later, so an alert that held (Ready False, no success for too long, suspended)
would clear because the process is new. Status holds what those series say, so they are set from
it before any run. A process that already has series for the Institution keeps its own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from examsync import metrics
from examsync.kube.scheduler import parse_time
from examsync.spec import SpecError, parse_duration, parse_spec

log = logging.getLogger("examsync.operator")

DEFAULT_INTERVAL = "6h"


def _interval_seconds(spec_raw: Mapping[str, Any]) -> float:
    try:
        return parse_duration(str(spec_raw.get("interval") or DEFAULT_INTERVAL)).total_seconds()
    except ValueError:
        return 0.0


def _pipelines(spec_raw: Mapping[str, Any], status: Mapping[str, Any]) -> list[str]:
    """The pipelines the spec enables (as a run would count them), else those status lists."""
    try:
        return parse_spec(spec_raw).pipelines()
    except SpecError:
        counts = status.get("pipelines")
        return sorted(str(name) for name in counts) if isinstance(counts, Mapping) else []


def _missing_responsible(status: Mapping[str, Any], pipeline: str) -> int:
    counts = (status.get("pipelines") or {}).get(pipeline)
    value = counts.get("missingResponsible") if isinstance(counts, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def from_status(institution: str, body: Mapping[str, Any]) -> bool:
    """Export ``institution``'s series from the object's status; False when this process already
    has them (its own are newer) or the status holds nothing yet."""
    status = body.get("status")
    if not isinstance(status, Mapping) or not status:
        return False
    if institution in metrics.institutions():
        return False
    spec_raw = body.get("spec") or {}
    conditions = [dict(c) for c in status.get("conditions") or [] if isinstance(c, Mapping)]
    last_success = parse_time(status.get("lastSuccessTime"))
    try:
        metrics.restore(
            institution,
            conditions=conditions,
            suspended=spec_raw.get("suspend") is True,
            interval_seconds=_interval_seconds(spec_raw),
            last_success=last_success.timestamp() if last_success is not None else None,
            missing_responsible={p: _missing_responsible(status, p) for p in _pipelines(spec_raw, status)},
        )
    except Exception:  # best effort, as every metrics call: never in the way of a run
        log.exception("metrics not restored from status", extra={"institution": institution})
        return False
    return True
