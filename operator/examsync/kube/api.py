"""The few Kubernetes calls the operator makes itself: read a Secret, patch the status subresource.

Uses the official asynchronous client (``kubernetes.aio``), logged in the way kopf logs in: the
pod's service account in a cluster, else ``$KUBECONFIG`` (or ``~/.kube/config``).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from kubernetes.aio import client as kclient
from kubernetes.aio import config as kconfig
from kubernetes.aio.client.exceptions import ApiException

from examsync.api.spec import API_GROUP, API_VERSION, PLURAL
from examsync.credentials import OPAQUE, REFUSED_TYPES, Secret

__all__ = ["ApiException", "KubeApi", "load_configuration"]

_SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_NAMESPACE = "default"


async def load_configuration(kubeconfig: str | None = None) -> tuple[Any, str]:
    """The client configuration and the default namespace: the pod's service account (and its
    namespace) in a cluster, else ``kubeconfig`` (settings.kubeconfig: $KUBECONFIG; unset:
    ~/.kube/config) and its current context's."""
    configuration = kclient.Configuration()
    try:
        kconfig.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except kconfig.ConfigException:
        loader = await kconfig.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig,  # None: the client's default ($KUBECONFIG as it started, ~/.kube/config)
            client_configuration=configuration,
            persist_config=False,
        )
        context = (loader.current_context or {}).get("context") or {}
        return configuration, str(context.get("namespace") or DEFAULT_NAMESPACE)
    return configuration, _service_account_namespace()


def _service_account_namespace() -> str:
    try:
        namespace = _SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip()
    except OSError:
        namespace = ""
    return namespace or DEFAULT_NAMESPACE


class KubeApi:
    def __init__(self, api_client: Any) -> None:
        self._client = api_client
        self._core = kclient.CoreV1Api(api_client)
        self._custom = kclient.CustomObjectsApi(api_client)

    @classmethod
    async def from_environment(cls, kubeconfig: str | None = None) -> KubeApi:
        configuration, _ = await load_configuration(kubeconfig)
        return cls(kclient.ApiClient(configuration))

    async def read_secret(self, namespace: str, name: str) -> Secret | None:
        """The Secret's type and decoded data; None when it does not exist. Raises ApiException otherwise."""
        try:
            response = await self._core.read_namespaced_secret_without_preload_content(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        async with response:
            if response.status == 404:
                return None
            if response.status >= 400:
                raise ApiException(status=response.status, reason=response.reason)
            body = await response.json()
        secret_type = str(body.get("type") or OPAQUE)
        if secret_type in REFUSED_TYPES:
            return Secret({}, secret_type)  # never decoded: it is not used
        data = {k: base64.b64decode(v).decode("utf-8") for k, v in (body.get("data") or {}).items()}
        return Secret(data, secret_type)

    async def patch_status(self, namespace: str, name: str, status_patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch sent to the status subresource; returns the object after it."""
        result = await self._custom.patch_namespaced_custom_object_status(
            API_GROUP, API_VERSION, namespace, PLURAL, name, {"status": status_patch}
        )
        return dict(result) if isinstance(result, dict) else {}

    async def close(self) -> None:
        await self._client.close()
