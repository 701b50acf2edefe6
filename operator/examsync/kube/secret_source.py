"""Secrets read from the Institution's own namespace at the start of every run.

Nothing is cached between runs, so a rotated Secret is used by the next run without a restart.
"""

from __future__ import annotations

from examsync.credentials import Secret, SecretUnreadable
from examsync.kube.api import ApiException, KubeApi


class KubeSecrets:
    """examsync.credentials.SecretSource backed by the Kubernetes API."""

    def __init__(self, api: KubeApi, namespace: str) -> None:
        self._api = api
        self._namespace = namespace

    async def get(self, name: str) -> Secret | None:
        try:
            return await self._api.read_secret(self._namespace, name)
        except ApiException as exc:
            raise SecretUnreadable(name, exc.status) from None
