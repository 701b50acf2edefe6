"""What a client gets unless it is given its own: the read timeout, the retry policy (with the
call's deadline) and the CA bundle, from the settings (`EXAMSYNC_HTTP_TIMEOUT`,
`EXAMSYNC_RETRY_BASE_DELAY`, `EXAMSYNC_CALL_DEADLINE`, `SSL_CERT_FILE`; docs/settings.md).

A command sets them from the settings it loaded at start (`commands.upstream`), where a value
that cannot be used is reported naming its variable; anything else building a client (a
benchmark, a test's child process) has them read from the settings when the first client is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import certifi
import httpx

from examsync.adapters.upstream.retry import RetryPolicy
from examsync.settings import Settings

CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class UpstreamDefaults:
    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(30.0, connect=CONNECT_TIMEOUT))
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    ca_bundle: str = field(default_factory=certifi.where)  # the same trust as httpx's default

    @classmethod
    def from_settings(cls, settings: Settings) -> UpstreamDefaults:
        return cls(
            timeout=httpx.Timeout(settings.http_timeout, connect=CONNECT_TIMEOUT),
            retry=RetryPolicy(base_delay=settings.retry_base_delay, max_elapsed=settings.call_deadline),
            ca_bundle=str(settings.ssl_cert_file) if settings.ssl_cert_file else certifi.where(),
        )


class ProcessDefaults:
    """The process's defaults: those a command configured, else the settings' on first use."""

    def __init__(self) -> None:
        self.configured: UpstreamDefaults | None = None

    def configure(self, settings: Settings) -> None:
        self.configured = UpstreamDefaults.from_settings(settings)

    def get(self) -> UpstreamDefaults:
        """Raises SettingsError when they come from settings that cannot be used."""
        if self.configured is None:
            self.configured = UpstreamDefaults.from_settings(Settings.load())
        return self.configured


DEFAULTS = ProcessDefaults()
