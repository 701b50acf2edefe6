"""Samples of examsync's metrics in this process (the registry examsync.metrics registers with)."""

from __future__ import annotations

from collections.abc import Mapping

from examsync import metrics


def sample_value(name: str, labels: Mapping[str, str] | None = None) -> float | None:
    """One sample's value, or None when the series does not exist."""
    return metrics.registry.get_sample_value(name, dict(labels or {}))
