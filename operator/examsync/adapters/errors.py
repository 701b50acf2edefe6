"""One exception hierarchy for every outside system.

An error carries the system, the operation, the HTTP status (shown with its standard reason
phrase), our own words, and what the upstream said as far as it may be repeated
(`upstream.error_text.UpstreamText`): never a body. Render it for an item with `describe(masking)` so the
names of the item's people are masked too.
"""

from __future__ import annotations

from examsync.adapters.upstream.error_text import MaskingContext, UpstreamText, standard_phrase


class UpstreamError(Exception):
    """A call to an outside system failed after the retries it deserved."""

    def __init__(
        self,
        system: str,
        operation: str,
        message: str,
        status: int | None = None,
        *,
        upstream: UpstreamText | None = None,
    ) -> None:
        self.system = system
        self.operation = operation
        self.status = status
        self.message = message  # our own words: no upstream text, no personal data
        self.upstream = upstream or UpstreamText()
        super().__init__(self.describe())

    def status_line(self) -> str:
        """"fs list: HTTP 503 Service Unavailable" or "fs list: no response": no upstream text."""
        if self.status is None:
            return f"{self.system} {self.operation}: no response"
        return f"{self.system} {self.operation}: HTTP {self.status} {standard_phrase(self.status)}".rstrip()

    def describe(self, masking: MaskingContext | None = None) -> str:
        """The whole message, with the upstream's text masked for the item `masking` belongs to."""
        head = self.status_line()
        detail = [part for part in (self.message, self.upstream.render(masking)) if part]
        return f"{head}: {'; '.join(detail)}" if detail else head

    def __str__(self) -> str:
        return self.describe()


class AuthError(UpstreamError):
    """401/403: credentials are wrong or missing. Retrying will not fix it (Stalled)."""


class ClientError(UpstreamError):
    """A 4xx other than 401/403/404/429: the item is wrong for the target; fail that item only."""


class InvalidResponse(UpstreamError):
    """The system answered, but not in the contract's shape (or too large, or nested too deep)."""


class CircuitOpen(UpstreamError):
    """The system kept failing in this run; it is not called again until the next run."""


class HostNotAllowed(UpstreamError):
    """The operator's allowlist of upstream hosts does not include this host."""


# Errors that stop a pipeline's run (the driver fails the remaining items): retrying the next
# item cannot help when credentials are wrong, the host is not allowed or the system is down.
FATAL_ERRORS = (AuthError, CircuitOpen, HostNotAllowed)
