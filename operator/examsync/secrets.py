"""Secrets by reference: from Kubernetes (operator) or from `kind: Secret` objects in files (CLI)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Protocol

# The keys each Secret reference must hold, by the spec field that references it.
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "spec.fs.credentialsSecretRef": ("username", "password"),
    "spec.inspera.credentialsSecretRef": ("apiKey",),
    "spec.inspera.gateway.apiKeySecretRef": ("apiKey",),
    "spec.wiseflow.credentialsSecretRef": ("clientId", "clientSecret"),
    "spec.wiseflow.praktikportalen.credentialsSecretRef": ("apiKey",),
    "spec.notifications.slack.webhookSecretRef": ("url",),
    "spec.audit.humio.tokenSecretRef": ("token",),
}


class SecretMissing(Exception):
    """A referenced Secret or key does not exist. Names the spec field, never a value."""

    def __init__(self, field: str, name: str, key: str | None = None) -> None:
        self.field = field
        self.name = name
        self.key = key
        what = f"key {key!r} of Secret {name!r}" if key else f"Secret {name!r}"
        super().__init__(f"{field}: {what} not found")


class SecretSource(Protocol):
    async def get(self, name: str) -> Mapping[str, str] | None:
        """The Secret's decoded data, or None when it does not exist."""
        ...


class StaticSecrets:
    """Secrets given up front (CLI files, tests)."""

    def __init__(self, secrets: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self._secrets = {name: dict(data) for name, data in (secrets or {}).items()}

    async def get(self, name: str) -> Mapping[str, str] | None:
        return self._secrets.get(name)


def decode_secret(manifest: Mapping[str, Any]) -> dict[str, str]:
    """`data` (base64) and `stringData` of a Secret manifest, stringData winning as in Kubernetes."""
    out = {k: base64.b64decode(v).decode("utf-8") for k, v in (manifest.get("data") or {}).items()}
    out.update({k: str(v) for k, v in (manifest.get("stringData") or {}).items()})
    return out


class ResolvedSecrets:
    """The Secrets one run needs, read once at its start (so rotation needs no restart)."""

    def __init__(self, data: Mapping[str, Mapping[str, str]]) -> None:
        self._data = data

    def value(self, field: str, name: str, key: str) -> str:
        secret = self._data.get(name)
        if secret is None:
            raise SecretMissing(field, name)
        value = secret.get(key)
        if not value:
            raise SecretMissing(field, name, key)
        return value
