"""One exception hierarchy for every outside system.

Messages carry the system, operation and HTTP status, never a body that could hold personal
data or a secret.
"""

from __future__ import annotations


class UpstreamError(Exception):
    """A call to an outside system failed after the retries it deserved."""

    def __init__(self, system: str, operation: str, message: str, status: int | None = None) -> None:
        self.system = system
        self.operation = operation
        self.status = status
        code = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"{system} {operation}: {code}: {message}" if message else f"{system} {operation}: {code}")


class AuthError(UpstreamError):
    """401/403: credentials are wrong or missing. Retrying will not fix it (Stalled)."""


class ClientError(UpstreamError):
    """A 4xx other than 401/403/404/429: the item is wrong for the target; fail that item only."""


class InvalidResponse(UpstreamError):
    """The system answered, but not in the contract's shape."""


class CircuitOpen(UpstreamError):
    """The system kept failing in this run; it is not called again until the next run."""


class HostNotAllowed(UpstreamError):
    """The operator's allowlist of upstream hosts does not include this host."""


# Errors that stop a pipeline's run (the driver fails the remaining items): retrying the next
# item cannot help when credentials are wrong, the host is not allowed or the system is down.
FATAL_ERRORS = (AuthError, CircuitOpen, HostNotAllowed)
