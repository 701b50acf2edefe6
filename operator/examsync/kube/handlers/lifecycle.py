"""Operator start and stop: kopf settings, the Kubernetes client, the metrics server."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from examsync import metrics
from examsync.kube.config import Shared
from examsync.kube.reconciler import observe

FINALIZER = "examsync.io/finalizer"
COMPONENT = "examsync"  # events are reported by this component ("From" in `kubectl describe`)

log = logging.getLogger("examsync.operator")


def configure(settings: kopf.OperatorSettings, instance: str) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.posting.reporting_component = COMPONENT
    settings.posting.reporting_instance = instance
    settings.posting.event_name_prefix = f"{COMPONENT}-"
    # only the Events this operator posts on purpose, not every log line of an object's logger
    settings.posting.loggers = False
    settings.posting.level = logging.INFO


async def startup(shared: Shared, settings: kopf.OperatorSettings, **_: Any) -> None:
    configure(settings, shared.config.instance)
    if shared.api is None:
        shared.api = await shared.config.api_factory()
    if shared.config.metrics_port is not None:
        observe(metrics.serve, shared.config.metrics_port)
    if shared.config.audit_store is not None:  # schema and retention in the background: never blocks startup
        store = shared.config.audit_store
        log.info("audit history store", extra={"store": str(store.url), "retentionDays": store.retention.days})
        await store.start()


async def cleanup(shared: Shared, **_: Any) -> None:
    if shared.config.audit_store is not None:  # after every run has ended: their last records (bounded time)
        await shared.config.audit_store.close()
    if shared.api is not None:
        await shared.api.close()
        shared.api = None
