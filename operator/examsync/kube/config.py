"""What the operator layer is built with; tests swap the clock, the randomness and the API."""

from __future__ import annotations

import random
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from examsync.kube.api import KubeApi
from examsync.pipelines.base import utcnow
from examsync.pipelines.runner import SinkFactory

if TYPE_CHECKING:
    from examsync.adapters.auditstore.store import AuditStore


@dataclass
class OperatorConfig:
    # builds the Kubernetes client at startup; default: in-cluster, else $KUBECONFIG
    api_factory: Callable[[], Awaitable[KubeApi]] = KubeApi.from_environment
    kopf_login: bool = True  # False: the caller registers its own @kopf.on.login (tests)
    now: Callable[[], datetime] = utcnow
    rng: random.Random = field(default_factory=random.Random)
    sinks: SinkFactory | None = None
    # the audit history store the sinks write to: started at startup, flushed and closed at cleanup
    audit_store: AuditStore | None = None
    # after SIGTERM a run stops taking items and gets this long to finish its calls in flight,
    # then is cancelled (and given `cancel_seconds` more); together within the pod's grace period
    grace_seconds: float = 20.0
    cancel_seconds: float = 5.0
    api_retry_seconds: float = 10.0  # wait after a failed status write before trying again
    metrics_port: int | None = None  # serve /metrics on this port at startup (None: not here)
    # the events' reportingInstance: the pod's name (settings.pod_name), else the host's
    instance: str = field(default_factory=socket.gethostname)


@dataclass
class Shared:
    """What every Institution's daemon uses; the API client exists between startup and cleanup."""

    config: OperatorConfig
    api: KubeApi | None = None

    def require_api(self) -> KubeApi:
        if self.api is None:
            raise RuntimeError("the Kubernetes client is not started")
        return self.api
