"""Which upstream hosts may be called at all (contracts/README.md, Security rule 1).

The allowlist denies by default: unset or empty means the real systems' public hosts, never
"every host". Entries are parsed once; ``check(url)`` gives the reason a URL is refused (or
None), so the CLI, the operator and the HTTP layer share one rule and one wording.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

from examsync.api.conditions import ConditionReason
from examsync.errors import RunStoppingError
from examsync.settings import env_name

ENV_VAR = env_name("allowed_hosts")

DEFAULT_ENTRIES: tuple[str, ...] = (
    "fsws.usit.no",
    "fs-test.uio.no",
    "*.inspera.no",
    "*.inspera.com",
    "*.wiseflow.net",
    "*.humio.com",
    "hooks.slack.com",
)

_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_DEFAULT_PORTS = {"http": 80, "https": 443}

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class InvalidEntry(ValueError):
    """An allowlist entry that is not a host name, a wildcard or an IP literal (with an optional port)."""


def _ip(host: str) -> IpAddress | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return address


def _dns_name(host: str) -> bool:
    """A plain ASCII DNS name whose last label is not numeric (`127.1` or `2130706433` are
    resolved as IPv4 addresses by the C library, so they are not names)."""
    labels = host.split(".")
    return len(host) <= 253 and all(_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1, `localhost` and names under it (RFC 6761 resolves them to loopback)."""
    host = host.lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    address = _ip(host)
    return address is not None and address.is_loopback


@dataclass(frozen=True)
class HostEntry:
    """One parsed entry: an exact name, a wildcard's suffix (`*.inspera.no` → `inspera.no`), or an IP."""

    name: str  # lower-case host name, or the wildcard's parent domain
    port: int | None = None  # None: any port
    wildcard: bool = False
    address: IpAddress | None = None

    @classmethod
    def parse(cls, text: str) -> HostEntry:
        raw = text.strip().lower()
        host, port = raw, None
        if raw.startswith("["):  # [::1] or [::1]:8443
            close = raw.find("]")
            if close < 0:
                raise InvalidEntry(f"{text!r}: unclosed '['")
            host, rest = raw[1:close], raw[close + 1 :]
            if rest:
                if not rest.startswith(":"):
                    raise InvalidEntry(f"{text!r}: not host or host:port")
                port = _port(text, rest[1:])
        elif raw.count(":") == 1:
            host, port_text = raw.split(":")
            port = _port(text, port_text)
        address = _ip(host)
        if address is not None:
            return cls(name=str(address), port=port, address=address)
        if raw.count(":") > 1 and not raw.startswith("["):
            raise InvalidEntry(f"{text!r}: not an IP address (write an IPv6 address with a port as [addr]:port)")
        wildcard = host.startswith("*.")
        name = host[2:] if wildcard else host
        if not _dns_name(name) or (wildcard and "." not in name):
            raise InvalidEntry(f"{text!r}: not a host name, '*.domain' or an IP address, with an optional :port")
        return cls(name=name, port=port, wildcard=wildcard)

    def matches(self, host: str, address: IpAddress | None, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.address is not None or address is not None:
            return self.address == address
        if self.wildcard:
            # at least one more label; never loopback, whatever the pattern
            return host.endswith("." + self.name) and not is_loopback(host)
        return host == self.name

    def __str__(self) -> str:
        host = f"*.{self.name}" if self.wildcard else self.name
        if self.address is not None and self.address.version == 6 and self.port is not None:
            host = f"[{host}]"
        return host if self.port is None else f"{host}:{self.port}"


def _port(entry: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InvalidEntry(f"{entry!r}: port {text!r} is not a number from 1 to 65535")
    return int(text)


@dataclass(frozen=True)
class HostAllowlist:
    """The parsed allowlist; `default` is set when no entry was given (the built-in list)."""

    entries: tuple[HostEntry, ...]
    allow_loopback: bool = False
    default: bool = False

    @classmethod
    def parse(cls, entries: Iterable[str], *, allow_loopback: bool = False) -> HostAllowlist:
        """Entries (blank ones ignored); none at all means the default list. Raises InvalidEntry."""
        parsed = tuple(HostEntry.parse(e) for e in entries if e.strip())
        if not parsed:
            return cls(tuple(HostEntry.parse(e) for e in DEFAULT_ENTRIES), allow_loopback, default=True)
        return cls(parsed, allow_loopback)

    @classmethod
    def from_setting(
        cls, value: str | None, extra: Iterable[str] = (), *, allow_loopback: bool = False
    ) -> HostAllowlist:
        """`EXAMSYNC_ALLOWED_HOSTS` (comma-separated) plus `extra` entries (`--allow-host`)."""
        return cls.parse([*(value or "").split(","), *extra], allow_loopback=allow_loopback)

    def refusal(self, url: str) -> str | None:
        """Why the URL may not be called, or None when it may."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return "is not a valid URL"
        raw_host = parts.hostname or ""
        if not raw_host:
            return "names no host"
        if raw_host.endswith("."):
            return f"host {raw_host!r} ends with a dot (write the name without it)"
        host = raw_host.lower()
        if port is None:
            port = _DEFAULT_PORTS.get(parts.scheme.lower(), 0)
        address = _ip(host)
        if address is None and not _dns_name(host):
            return f"host {raw_host!r} is not a valid host name"
        if is_loopback(host) and self.allow_loopback:
            return None
        if any(entry.matches(host, address, port) for entry in self.entries):
            return None
        what = "the default allowlist" if self.default else "the allowlist"
        hint = f" (set {ENV_VAR} or --allow-host)" if self.default else ""
        if is_loopback(host):
            hint = " (loopback needs a literal entry or --allow-loopback)"
        return f"host {host}{'' if parts.port is None else f':{port}'} is not in {what}{hint}"

    def __str__(self) -> str:
        text = ", ".join(str(e) for e in self.entries)
        return f"{text}{', loopback' if self.allow_loopback else ''}"


class HostRefused(RunStoppingError):
    """URLs of an Institution that name a host not allowed: (field, why) each, no URL path or secret."""

    condition_reason: ClassVar[ConditionReason] = ConditionReason.HOST_NOT_ALLOWED

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{field}: {why}" for field, why in problems))


def check_urls(allowlist: HostAllowlist, urls: Iterable[tuple[str, str]]) -> None:
    """Raise HostRefused naming every (field, URL) whose host the allowlist refuses."""
    problems = [(field, why) for field, url in urls if (why := allowlist.refusal(url)) is not None]
    if problems:
        raise HostRefused(problems)


_current = HostAllowlist.parse(())


def current() -> HostAllowlist:
    """The process-wide allowlist (`examsync run` / `examsync sync` set it once at start)."""
    return _current


def configure(allowlist: HostAllowlist) -> None:
    global _current
    _current = allowlist


__all__ = [
    "DEFAULT_ENTRIES",
    "ENV_VAR",
    "HostAllowlist",
    "HostEntry",
    "HostRefused",
    "InvalidEntry",
    "check_urls",
    "configure",
    "current",
    "is_loopback",
]
