"""Prometheus metrics (contracts/operator.md). Label values are bounded: never an item id or a person."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from examsync import __version__

SYSTEMS = ("fs", "inspera", "gravitee", "wiseflow", "praktikportalen", "slack", "humio")

_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

registry: CollectorRegistry = REGISTRY

RUNS = Counter("examsync_runs_total", "Pipeline runs by result.", ["institution", "pipeline", "result"])
RUN_DURATION = Histogram(
    "examsync_run_duration_seconds", "Duration of a pipeline run.", ["institution", "pipeline"],
    buckets=_DURATION_BUCKETS,
)
ITEMS = Counter(
    "examsync_items_total", "Items handled, by action and reason.", ["institution", "pipeline", "action", "reason"]
)
LAST_SUCCESS = Gauge(
    "examsync_last_success_timestamp_seconds", "Unix time of the last run with no failed item.",
    ["institution", "pipeline"],
)
INTERVAL = Gauge("examsync_interval_seconds", "The Institution's run interval.", ["institution"])
SUSPENDED = Gauge("examsync_suspended", "1 while the Institution is suspended.", ["institution"])
MISSING_RESPONSIBLE = Gauge(
    "examsync_missing_responsible", "Targets written without a responsible in the last run.",
    ["institution", "pipeline"],
)
UPSTREAM_REQUESTS = Counter(
    "examsync_upstream_requests_total", "Requests to outside systems by response code.", ["system", "operation", "code"]
)
UPSTREAM_DURATION = Histogram(
    "examsync_upstream_request_duration_seconds", "Latency of requests to outside systems.", ["system", "operation"],
    buckets=_LATENCY_BUCKETS,
)
RETRIES = Counter("examsync_retries_total", "Retried upstream requests by cause.", ["system", "reason"])
AUDIT_DROPPED = Counter("examsync_audit_records_dropped_total", "Audit records a sink could not take.", ["sink"])
BUILD_INFO = Gauge("examsync_build_info", "Build information.", ["version"])
BUILD_INFO.labels(__version__).set(1)


def observe_upstream(system: str, operation: str, code: str, seconds: float) -> None:
    UPSTREAM_REQUESTS.labels(system, operation, code).inc()
    UPSTREAM_DURATION.labels(system, operation).observe(seconds)
