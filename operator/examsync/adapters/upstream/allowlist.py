"""The last check before a request leaves: its host is allowed (the spec's URLs were checked
before the run; this catches every URL a request is actually sent to)."""

from __future__ import annotations

from examsync import hosts
from examsync.adapters.errors import HostNotAllowed


def check(system: str, url: str, allowlist: hosts.HostAllowlist | None = None) -> None:
    """Raises HostNotAllowed unless `url`'s host is allowed (None: the process-wide allowlist)."""
    refusal = (allowlist or hosts.current()).refusal(url)
    if refusal is not None:
        raise HostNotAllowed(system, "connect", refusal)
