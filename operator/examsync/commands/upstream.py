"""Process-wide upstream limits and defaults from the settings, shared by `examsync run` and `examsync sync`."""

from __future__ import annotations

from collections.abc import Sequence

from examsync import hosts
from examsync.adapters.upstream.defaults import DEFAULTS
from examsync.adapters.upstream.limits import HOST_LIMITS
from examsync.settings import Settings


def configure_allowed_hosts(
    allow_hosts: Sequence[str] = (), *, allow_loopback: bool = False, settings: Settings | None = None
) -> hosts.HostAllowlist:
    """The host allowlist (`allowed_hosts`, chart value `allowedHosts`, plus `sync --allow-host`;
    none at all means the default list), connections and requests per second per host, and the
    clients' timeout, retry delays, call deadline and CA bundle.

    Raises hosts.InvalidEntry for an entry that is not a host, SettingsError for a setting that
    cannot be read."""
    settings = settings or Settings.load()
    allowlist = hosts.HostAllowlist.from_setting(settings.allowed_hosts, allow_hosts, allow_loopback=allow_loopback)
    hosts.configure(allowlist)
    if settings.max_connections_per_host is not None:
        HOST_LIMITS.per_host = settings.max_connections_per_host
    rate = settings.max_requests_per_second_per_host
    HOST_LIMITS.rate_per_host = rate if rate > 0 else None
    DEFAULTS.configure(settings)
    return allowlist
