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
from examsync.api.spec import InstitutionSpec, PipelineName, SpecError, parse_duration, parse_spec
from examsync.api.status import InstitutionStatus, PipelinesStatus
from examsync.domain.outcomes import FsCounts

log = logging.getLogger("examsync.operator")

_DEFAULT_INTERVAL = str(InstitutionSpec.model_fields["interval"].default)


def _interval_seconds(spec_raw: Mapping[str, Any]) -> float:
    try:
        return parse_duration(str(spec_raw.get("interval") or _DEFAULT_INTERVAL)).total_seconds()
    except ValueError:
        return 0.0


def _pipelines(spec_raw: Mapping[str, Any], counts: PipelinesStatus) -> list[PipelineName]:
    """The pipelines the spec enables (as a run would count them), else those status has counters of."""
    try:
        return parse_spec(spec_raw).pipelines()
    except SpecError:
        return counts.ran()


def _missing_responsible(counts: PipelinesStatus, pipeline: PipelineName) -> int:
    of = counts.of(pipeline)
    return of.missingResponsible if isinstance(of, FsCounts) else 0


def from_status(institution: str, body: Mapping[str, Any]) -> bool:
    """Export ``institution``'s series from the object's status; False when this process already
    has them (its own are newer) or the status holds nothing yet."""
    raw = body.get("status")
    if not isinstance(raw, Mapping) or not raw or institution in metrics.institutions():
        return False
    status = InstitutionStatus.load(raw)
    spec_raw = body.get("spec") or {}
    counts = status.pipelines or PipelinesStatus()
    try:
        metrics.restore(
            institution,
            conditions=status.conditions or [],
            suspended=spec_raw.get("suspend") is True,
            interval_seconds=_interval_seconds(spec_raw),
            last_success=status.lastSuccessTime.timestamp() if status.lastSuccessTime is not None else None,
            missing_responsible={str(p): _missing_responsible(counts, p) for p in _pipelines(spec_raw, counts)},
        )
    except Exception:  # best effort, as every metrics call: never in the way of a run
        log.exception("metrics not restored from status", extra={"institution": institution})
        return False
    return True
