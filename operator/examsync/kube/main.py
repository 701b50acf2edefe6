"""Registers the operator's handlers on a fresh kopf registry; each delegates to ``handlers``.

``build_registry`` makes a new registry every call, so tests can start the operator in-process
as often as they like without handlers leaking between them.
"""

from __future__ import annotations

from typing import Any

import kopf

from examsync.api.spec import API_GROUP, API_VERSION, PLURAL
from examsync.kube.config import OperatorConfig, Shared
from examsync.kube.handlers import institution, lifecycle


def build_registry(config: OperatorConfig | None = None) -> kopf.OperatorRegistry:
    shared = Shared(config or OperatorConfig())
    cfg = shared.config
    registry = kopf.OperatorRegistry()

    if cfg.kopf_login:
        # the same login as our own client: the pod's service account, else $KUBECONFIG
        @kopf.on.login(registry=registry, id="login")
        def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
            info: kopf.ConnectionInfo | None = kopf.login_via_client(**kwargs)
            return info

    @kopf.on.startup(registry=registry, id="startup")
    async def startup(settings: kopf.OperatorSettings, **kwargs: Any) -> None:
        await lifecycle.startup(shared, settings, **kwargs)

    @kopf.on.cleanup(registry=registry, id="cleanup")
    async def cleanup(**kwargs: Any) -> None:
        await lifecycle.cleanup(shared, **kwargs)

    # async on purpose: kopf runs sync handlers in threads, and the wake-up is an asyncio.Event
    @kopf.on.event(API_GROUP, API_VERSION, PLURAL, registry=registry, id="wake")
    async def wake(memo: Any, **_: Any) -> None:
        institution.wake(memo)

    @kopf.daemon(
        API_GROUP,
        API_VERSION,
        PLURAL,
        registry=registry,
        id="reconcile",
        cancellation_backoff=cfg.grace_seconds,
        cancellation_timeout=cfg.cancel_seconds,
    )
    async def reconcile(
        name: str, namespace: str | None, body: kopf.Body, stopped: kopf.DaemonStopped, memo: Any, **_: Any
    ) -> None:
        await institution.serve(
            shared, name=name, namespace=namespace or "default", body=body, stopped=stopped, memo=memo
        )

    return registry
