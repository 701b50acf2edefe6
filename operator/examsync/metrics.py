"""Prometheus metrics (contracts/operator.md). Label values are bounded: never an item id or a person.

The operator layer calls `record_run` after each run, `set_view` whenever it writes status and
`forget` when an Institution is deleted; `serve` exposes /metrics and `write_textfile` writes the
one-shot CLI's node-exporter textfile.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
    write_to_textfile,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from examsync import __version__
from examsync.api.conditions import Condition, ConditionStatus, ConditionType
from examsync.domain.outcomes import Reason

if TYPE_CHECKING:
    from examsync.api.spec import InstitutionSpec
    from examsync.report import InstitutionReport

RUN_RESULTS = ("succeeded", "failed")

_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

registry: CollectorRegistry = REGISTRY

RUNS = Counter("examsync_runs_total", "Pipeline runs by result.", ["institution", "pipeline", "result"])
RUN_DURATION = Histogram(
    "examsync_run_duration_seconds",
    "Duration of a pipeline run.",
    ["institution", "pipeline"],
    buckets=_DURATION_BUCKETS,
)
ITEMS = Counter(
    "examsync_items_total",
    "Items handled, by action and reason.",
    ["institution", "pipeline", "action", "reason"],
)
LAST_SUCCESS = Gauge(
    "examsync_last_success_timestamp_seconds",
    "Unix time of the last run with no failed item.",
    ["institution", "pipeline"],
)
INTERVAL = Gauge("examsync_interval_seconds", "The Institution's run interval.", ["institution"])
SUSPENDED = Gauge("examsync_suspended", "1 while the Institution is suspended.", ["institution"])
MISSING_RESPONSIBLE = Gauge(
    "examsync_missing_responsible",
    "Targets written without a responsible in the last run.",
    ["institution", "pipeline"],
)
UPSTREAM_REQUESTS = Counter(
    "examsync_upstream_requests_total",
    "Requests to outside systems by response code.",
    ["system", "operation", "code"],
)
UPSTREAM_DURATION = Histogram(
    "examsync_upstream_request_duration_seconds",
    "Latency of requests to outside systems.",
    ["system", "operation"],
    buckets=_LATENCY_BUCKETS,
)
RETRIES = Counter("examsync_retries_total", "Retried upstream requests by cause.", ["system", "reason"])
AUDIT_DROPPED = Counter("examsync_audit_records_dropped_total", "Audit records a sink could not take.", ["sink"])
BUILD_INFO = Gauge("examsync_build_info", "Build information.", ["version"])
BUILD_INFO.labels(__version__).set(1)

# Metrics whose first label is `institution`: `forget` removes their series.
_PER_INSTITUTION: tuple[Counter | Gauge | Histogram, ...] = (
    RUNS,
    RUN_DURATION,
    ITEMS,
    LAST_SUCCESS,
    INTERVAL,
    SUSPENDED,
    MISSING_RESPONSIBLE,
)


def observe_upstream(system: str, operation: str, code: str, seconds: float) -> None:
    UPSTREAM_REQUESTS.labels(system, operation, code).inc()
    UPSTREAM_DURATION.labels(system, operation).observe(seconds)


@dataclass(frozen=True)
class _View:
    conditions: tuple[tuple[str, str], ...]  # (type, status)


class _State:
    """What the process knows per Institution; read by the scrape thread, written by the loop."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.views: dict[str, _View] = {}
        # every label tuple created per Institution and metric, so `forget` can remove them all
        self.series: dict[str, set[tuple[int, tuple[str, ...]]]] = {}

    def track(self, metric: Counter | Gauge | Histogram, labels: tuple[str, ...]) -> None:
        with self.lock:
            self.series.setdefault(labels[0], set()).add((_PER_INSTITUTION.index(metric), labels))


_STATE = _State()


def _child(metric: Any, *labels: str) -> Any:
    _STATE.track(metric, labels)
    return metric.labels(*labels)


class ConditionCollector(Collector):
    """examsync_institution_condition, computed at scrape time from the operator's current view,
    so an Institution that is gone leaves no series behind."""

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "examsync_institution_condition",
            "1 for the status each condition of the Institution has now (Ready, Reconciling, Stalled).",
            labels=["institution", "type", "status"],
        )
        with _STATE.lock:
            views = dict(_STATE.views)
        for institution, view in sorted(views.items()):
            for ctype, current in view.conditions:
                for status in ConditionStatus:
                    family.add_metric([institution, ctype, status], 1.0 if status == current else 0.0)
        yield family

    def describe(self) -> Iterable[Metric]:
        # Describing (an empty family) keeps registration cheap and lets tools list the name.
        labels = ["institution", "type", "status"]
        return [GaugeMetricFamily("examsync_institution_condition", "", labels=labels)]


CONDITIONS = ConditionCollector()
registry.register(CONDITIONS)


def record_run(institution: str, report: InstitutionReport, spec: InstitutionSpec) -> None:
    """Counters, histograms and last-run gauges from one finished run of one Institution."""
    now = time.time()
    _child(INTERVAL, institution).set(spec.interval_delta.total_seconds())
    # A run that could not start (missing Secret) has no pipeline reports: count each pipeline failed.
    names = list(report.pipelines) or spec.pipelines()
    for name in names:
        pipeline = report.pipelines.get(name)
        failed = pipeline is None or pipeline.failed or report.error is not None
        # both series exist from the first run on, so increase() sees the first failure too
        for result in RUN_RESULTS:
            _child(RUNS, institution, name, result)
        _child(RUNS, institution, name, "failed" if failed else "succeeded").inc()
        if pipeline is None:
            continue
        _child(RUN_DURATION, institution, name).observe(pipeline.duration)
        for (action, reason), count in pipeline.reasons.items():
            _child(ITEMS, institution, name, action, reason or "").inc(count)
        missing = sum(n for (_, reason), n in pipeline.reasons.items() if reason is Reason.MISSING_RESPONSIBLE)
        _child(MISSING_RESPONSIBLE, institution, name).set(missing)
        if not failed:
            _child(LAST_SUCCESS, institution, name).set(now)


def set_view(institution: str, conditions: Sequence[Condition], suspended: bool, interval_seconds: float) -> None:
    """The operator's current view of one Institution (called whenever it writes status)."""
    pairs = tuple((str(c.type), str(c.status)) for c in conditions)
    with _STATE.lock:
        _STATE.views[institution] = _View(pairs)
    _child(SUSPENDED, institution).set(1 if suspended else 0)
    _child(INTERVAL, institution).set(interval_seconds)


def restore(
    institution: str,
    *,
    conditions: Sequence[Condition],
    suspended: bool,
    interval_seconds: float,
    last_success: float | None,
    missing_responsible: Mapping[str, int],
) -> None:
    """What a new process knows of one Institution from its status, before its next run: the
    view, and per pipeline the last success, the missing responsibles and both run series at 0."""
    set_view(institution, conditions, suspended, interval_seconds)
    for pipeline, missing in missing_responsible.items():
        for result in RUN_RESULTS:
            _child(RUNS, institution, pipeline, result)
        _child(MISSING_RESPONSIBLE, institution, pipeline).set(missing)
        if last_success is not None:
            _child(LAST_SUCCESS, institution, pipeline).set(last_success)


def conditions_for(report: InstitutionReport) -> list[Condition]:
    """Ready and Stalled as a run alone shows them (for the one-shot CLI, which has no status)."""

    def status(value: bool) -> ConditionStatus:
        return ConditionStatus.TRUE if value else ConditionStatus.FALSE

    return [
        Condition(type=ConditionType.READY, status=status(not report.failed)),
        Condition(type=ConditionType.STALLED, status=status(report.is_stalled)),
    ]


def forget(institution: str) -> None:
    """Drop every series of a deleted Institution (labelled gauges included)."""
    with _STATE.lock:
        _STATE.views.pop(institution, None)
        series = _STATE.series.pop(institution, set())
    for index, labels in series:
        with contextlib.suppress(KeyError):  # already gone
            _PER_INSTITUTION[index].remove(*labels)


def institutions() -> set[str]:
    """Institutions with any series or view (tests, debugging)."""
    with _STATE.lock:
        return set(_STATE.views) | set(_STATE.series)


def start_server(port: int, addr: str = "0.0.0.0") -> Any:
    """Start prometheus_client's HTTP server in a thread; returns (server, thread) so tests can stop it."""
    return start_http_server(port, addr=addr, registry=registry)


def serve(port: int) -> None:
    """Expose /metrics on every interface of the pod."""
    start_server(port)


class _OwnMetrics(Collector):
    """Only examsync_* families: node-exporter has process_* metrics of its own, and a textfile
    repeating a name it exports breaks its whole scrape."""

    def collect(self) -> Iterator[Metric]:
        return (family for family in registry.collect() if family.name.startswith("examsync_"))


def write_textfile(path: str | Path) -> None:
    """Write the exposition for node-exporter's textfile collector (temp file + rename: atomic)."""
    write_to_textfile(str(path), _OwnMetrics())
