"""The circuit breaker: a system that keeps failing is given up on for the rest of the run."""

from __future__ import annotations

from examsync.adapters.errors import CircuitOpen, UpstreamError


class CircuitBreaker:
    """Opens after `threshold` consecutive failed calls (after their retries) within one run."""

    def __init__(self, threshold: int = 5) -> None:
        self.threshold = threshold
        self.consecutive_failures = 0
        self.opened_by: UpstreamError | None = None

    def ensure_closed(self, system: str, operation: str) -> None:
        """Raises CircuitOpen (naming the failure that opened it) once the breaker is open."""
        if self.opened_by is not None:
            last = f" (last: {self.opened_by.status_line()})"
            raise CircuitOpen(system, operation, f"given up for this run after repeated failures{last}")

    def success(self) -> None:
        self.consecutive_failures = 0

    def failure(self, error: UpstreamError) -> None:
        self.consecutive_failures += 1
        if self.consecutive_failures >= self.threshold:
            self.opened_by = error
