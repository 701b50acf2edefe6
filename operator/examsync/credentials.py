"""Secrets by reference: from Kubernetes (operator) or from `kind: Secret` objects in files (CLI),
resolved once at the start of each run (so rotation needs no restart)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from examsync.api.conditions import ConditionReason
from examsync.api.spec import InstitutionSpec, SecretRef, SecretUse
from examsync.errors import RunStoppingError


class SecretMissing(RunStoppingError):
    """A referenced Secret or key does not exist. Names the spec field, never a value."""

    condition_reason: ClassVar[ConditionReason] = ConditionReason.SECRET_MISSING

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


class SecretNotAllowed(RunStoppingError):
    """A referenced Secret is of a type the operator never uses. Names the field and the type."""

    condition_reason: ClassVar[ConditionReason] = ConditionReason.SECRET_NOT_ALLOWED

    def __init__(self, field: str, name: str, type_: str) -> None:
        self.field = field
        self.name = name
        self.type = type_
        super().__init__(f"{field}: Secret {name!r} is of type {type_}, which is never used")


class SecretUnreadable(RunStoppingError):
    """The Secret store refused or failed to give a Secret (not "not found"). Names it, never a
    value. Refused (401/403): only a person can fix it; otherwise a later run may read it."""

    condition_reason: ClassVar[ConditionReason] = ConditionReason.SECRET_UNREADABLE

    def __init__(self, name: str, status: int | None) -> None:
        self.name = name
        self.status = status
        super().__init__(f"Secret could not be read: Secret {name!r}: HTTP {status}")

    @property
    def stalled(self) -> bool:
        return self.status in (401, 403)


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
        """The Secret, or None when it does not exist. Raises SecretUnreadable."""
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


def secret_problem(use: SecretUse, secret: Secret | None) -> SecretMissing | SecretNotAllowed | None:
    """Why the Secret a spec field references cannot be used (absent, of a refused type, or
    lacking a key it must hold), or None."""
    if secret is None:
        return SecretMissing(use.path, use.ref.name)
    if secret.refused:
        return SecretNotAllowed(use.path, use.ref.name, secret.type)
    missing = [key for key in use.required if not secret.data.get(key)]
    if missing:
        return SecretMissing(use.path, use.ref.name, missing[0])
    return None


class ResolvedSecrets:
    """The Secrets one run needs, read once at its start (so rotation needs no restart)."""

    def __init__(self, data: Mapping[str, Mapping[str, str]], uses: Sequence[SecretUse] = ()) -> None:
        self._data = data
        self._uses = uses

    def path_of(self, ref: SecretRef) -> str:
        """The spec field holding ``ref`` (this very reference of the run's spec)."""
        return next((u.path for u in self._uses if u.ref is ref), f"Secret reference {ref.name!r}")

    def value(self, ref: SecretRef, key: str) -> str:
        """The value of ``key`` in the Secret ``ref`` names; raises SecretMissing naming the field."""
        secret = self._data.get(ref.name)
        value = secret.get(key) if secret is not None else None
        if not value:
            raise SecretMissing(self.path_of(ref), ref.name, key if secret is not None else None)
        return value


async def resolve_secrets(spec: InstitutionSpec, source: SecretSource) -> ResolvedSecrets:
    """Every Secret the spec's enabled parts reference, checked. Raises SecretMissing,
    SecretNotAllowed or SecretUnreadable (each a RunStoppingError)."""
    uses = spec.secret_refs()
    read: dict[str, Secret | None] = {}
    for use in uses:  # each reference checked, each Secret read once
        if use.ref.name not in read:
            read[use.ref.name] = await source.get(use.ref.name)
        problem = secret_problem(use, read[use.ref.name])
        if problem is not None:
            raise problem
    return ResolvedSecrets({name: dict(s.data) for name, s in read.items() if s is not None}, uses)
