"""The audit store's URL (contracts/sinks.md): `sqlite:///PATH` or `postgresql://...`, never printed
with its password.

A settings type (`Settings.audit_db`): SQLAlchemy is imported only when a URL is parsed, so a
process without an audit store never loads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from pydantic import GetCoreSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

EXPECTED = "use sqlite:///PATH or postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE"
MASK = "***"
_SECRET_QUERY_KEYS = ("password", "sslpassword")  # libpq parameters that hold secrets


class Backend(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


# what a user writes -> the backend; the async driver is ours to choose
_SCHEMES = {
    "sqlite": Backend.SQLITE,
    "sqlite+aiosqlite": Backend.SQLITE,
    "postgresql": Backend.POSTGRESQL,
    "postgres": Backend.POSTGRESQL,
    "postgresql+psycopg": Backend.POSTGRESQL,
}
_DRIVERS = {Backend.SQLITE: "sqlite+aiosqlite", Backend.POSTGRESQL: "postgresql+psycopg"}


class InvalidStoreUrl(ValueError):
    """A URL that names no usable database. The message never holds the URL's password."""


@dataclass(frozen=True)
class StoreUrl:
    backend: Backend
    url: URL = field(repr=False)  # with the async driver; holds the password
    shown: str  # what logs and messages print: the password masked

    @classmethod
    def parse(cls, text: str) -> StoreUrl:
        """Raises InvalidStoreUrl."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(text.strip())
        except (ArgumentError, ValueError):
            # the text itself is not repeated: it may hold a password
            raise InvalidStoreUrl(f"not a database URL: {EXPECTED}") from None
        backend = _SCHEMES.get(url.drivername)
        if backend is None:
            raise InvalidStoreUrl(f"unsupported database {url.drivername!r}: {EXPECTED}")
        if backend is Backend.SQLITE:
            if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
                raise InvalidStoreUrl(f"sqlite needs a file (an in-memory database keeps nothing): {EXPECTED}")
            if url.query or url.host or url.username or url.password:
                raise InvalidStoreUrl("sqlite:///PATH takes a path only (no host, user or query)")
        shown = _masked(url)
        return cls(backend, url.set(drivername=_DRIVERS[backend]), shown)

    @property
    def sqlite_path(self) -> Path | None:
        return Path(self.url.database or "") if self.backend is Backend.SQLITE else None

    def secrets(self) -> tuple[str, ...]:
        """Values never to print: the password, and secret libpq parameters in the query."""
        found = [str(self.url.password or "")]
        for key in _SECRET_QUERY_KEYS:
            value = self.url.query.get(key)
            found.extend([value] if isinstance(value, str) else list(value or ()))
        return tuple(s for s in found if s)

    def scrub(self, text: str) -> str:
        """`text` with every secret of this URL masked (driver messages may quote parameters)."""
        for secret in self.secrets():
            text = text.replace(secret, MASK)
        return text

    def __str__(self) -> str:
        return self.shown

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        # a settings field: parsed from the environment's text, shown (password masked) when dumped
        return core_schema.no_info_plain_validator_function(
            cls._validate, serialization=core_schema.to_string_ser_schema()
        )

    @classmethod
    def _validate(cls, value: object) -> StoreUrl:
        if isinstance(value, StoreUrl):
            return value
        if not isinstance(value, str):
            raise PydanticCustomError("store_url", "a database URL is text: {expected}", {"expected": EXPECTED})
        try:
            return cls.parse(value)
        except InvalidStoreUrl as exc:
            raise PydanticCustomError("store_url", "{reason}", {"reason": str(exc)}) from None


def _masked(url: URL) -> str:
    shown = url.set(query={}).render_as_string(hide_password=True)
    if not url.query:
        return shown
    query = {k: (MASK if k in _SECRET_QUERY_KEYS else v) for k, v in url.query.items()}
    return f"{shown}?{urlencode(query, doseq=True, safe='*/')}"
