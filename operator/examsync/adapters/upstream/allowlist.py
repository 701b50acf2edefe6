"""The last check before a request leaves: its host is allowed (the spec's URLs were checked
before the run; this catches every URL a request is actually sent to)."""

from __future__ import annotations

import httpx

from examsync import hosts
from examsync.adapters.errors import HostNotAllowed


def check(system: str, url: str | httpx.URL, allowlist: hosts.HostAllowlist | None = None) -> None:
    """Raises HostNotAllowed unless `url`'s host is allowed (None: the process-wide allowlist).
    A URL httpx parsed is checked by its parts (every request's; the verdict is remembered)."""
    rules = allowlist or hosts.current()
    if isinstance(url, httpx.URL):
        refusal = rules.refusal_of(url.scheme, url.raw_host.decode("ascii"), url.port)
    else:
        refusal = rules.refusal(url)
    if refusal is not None:
        raise HostNotAllowed(system, "connect", refusal)
