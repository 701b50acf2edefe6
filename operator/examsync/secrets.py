"""Secrets by reference: from Kubernetes (operator) or from `kind: Secret` objects in files (CLI)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

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


OPAQUE = "Opaque"
# Secret types never used, whatever an Institution names: a service-account token is a credential
# for the cluster itself (and holds a `token` key, as a Humio Secret does); so is a bootstrap token.
REFUSED_TYPES = frozenset({"kubernetes.io/service-account-token", "bootstrap.kubernetes.io/token"})


class SecretNotAllowed(Exception):
    """A referenced Secret is of a type the operator never uses. Names the field and the type."""

    reason: ClassVar[str] = "SecretNotAllowed"

    def __init__(self, field: str, name: str, type_: str) -> None:
        self.field = field
        self.name = name
        self.type = type_
        super().__init__(f"{field}: Secret {name!r} is of type {type_}, which is never used")


@dataclass(frozen=True)
class Secret:
    """A Secret's type and decoded data."""

    data: Mapping[str, str]
    type: str = OPAQUE

    @property
    def refused(self) -> bool:
        return self.type in REFUSED_TYPES


class SecretSource(Protocol):
    async def get(self, name: str) -> Secret | None:
        """The Secret, or None when it does not exist."""
        ...


@dataclass
class StaticSecrets:
    """Secrets given up front (CLI files, tests): data by name, and the types that are not Opaque."""

    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    types: Mapping[str, str] = field(default_factory=dict)

    async def get(self, name: str) -> Secret | None:
        data = self.secrets.get(name)
        return None if data is None else Secret(dict(data), self.types.get(name, OPAQUE))


def decode_secret(manifest: Mapping[str, Any]) -> dict[str, str]:
    """`data` (base64) and `stringData` of a Secret manifest, stringData winning as in Kubernetes.

    Raises ValueError naming the key whose value is not a string (or not valid base64)."""
    out: dict[str, str] = {}
    for section in ("data", "stringData"):
        values = manifest.get(section) or {}
        if not isinstance(values, Mapping):
            raise ValueError(f"{section}: not a mapping of keys to strings")
        for key, value in values.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ValueError(f"{section}.{key}: value is not a string")
            if section == "stringData":
                out[key] = value
                continue
            try:
                out[key] = base64.b64decode(value).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise ValueError(f"data.{key}: not valid base64 of UTF-8 text") from None
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
