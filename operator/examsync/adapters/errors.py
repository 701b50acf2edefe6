"""One exception hierarchy for every outside system.

An error carries the system, the operation, the HTTP status (shown with its standard reason
phrase), our own words, and what the upstream said as far as it may be repeated
(`upstream.error_text.UpstreamText`): never a body. Render it for an item with `describe(masking)` so the
names of the item's people are masked too. Those that stop a run (wrong credentials, a host not
allowed, a circuit open) are also `RunStoppingError`s, carrying their condition reason.
"""

from __future__ import annotations

from typing import ClassVar

from examsync.adapters.upstream.error_text import MaskingContext, UpstreamText, standard_phrase
from examsync.api.conditions import ConditionReason
from examsync.errors import RunStoppingError


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
        """ "fs list: HTTP 503 Service Unavailable" or "fs list: no response": no upstream text."""
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


class AuthError(UpstreamError, RunStoppingError):
    """401/403: credentials are wrong or missing. Retrying will not fix it (Stalled)."""

    condition_reason: ClassVar[ConditionReason] = ConditionReason.UNAUTHORIZED

    @property
    def reason(self) -> ConditionReason:
        return ConditionReason.FORBIDDEN if self.status == 403 else ConditionReason.UNAUTHORIZED


class ClientError(UpstreamError):
    """A 4xx other than 401/403/404/429: the item is wrong for the target; fail that item only."""


class InvalidResponse(UpstreamError):
    """The system answered, but not in the contract's shape (or too large, or nested too deep)."""


class CircuitOpen(UpstreamError, RunStoppingError):
    """The system kept failing in this run; it is not called again until the next run."""

    condition_reason: ClassVar[ConditionReason] = ConditionReason.UPSTREAM_UNAVAILABLE
    stalls: ClassVar[bool] = False


class HostNotAllowed(UpstreamError, RunStoppingError):
    """The operator's allowlist of upstream hosts does not include this host."""

    condition_reason: ClassVar[ConditionReason] = ConditionReason.HOST_NOT_ALLOWED


def stop_reason(error: UpstreamError) -> tuple[ConditionReason, bool]:
    """(reason, stalled) of a source or target that could not be used: the error's own when it
    stops the run, else the system is unavailable for now."""
    if isinstance(error, RunStoppingError):
        return error.reason, error.stalled
    return ConditionReason.UPSTREAM_UNAVAILABLE, False
