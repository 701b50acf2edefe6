"""Secrets read from the Institution's own namespace at the start of every run.

Nothing is cached between runs, so a rotated Secret is used by the next run without a restart.
"""

from __future__ import annotations

from examsync.kube.api import ApiException, KubeApi
from examsync.kube.status import SECRET_UNREADABLE_PREFIX
from examsync.secrets import Secret


class SecretReadError(Exception):
    """The API server refused or failed to give a Secret (not a 404). Names it, never a value."""

    def __init__(self, name: str, status: int | None) -> None:
        self.name = name
        self.status = status
        super().__init__(f"{SECRET_UNREADABLE_PREFIX}: Secret {name!r}: HTTP {status}")


class KubeSecrets:
    """examsync.secrets.SecretSource backed by the Kubernetes API."""

    def __init__(self, api: KubeApi, namespace: str) -> None:
        self._api = api
        self._namespace = namespace

    async def get(self, name: str) -> Secret | None:
        try:
            return await self._api.read_secret(self._namespace, name)
        except ApiException as exc:
            raise SecretReadError(name, exc.status) from None
