"""Fixtures of the operator tests (see kube_harness)."""

from kube_harness import cluster, operator

__all__ = ["cluster", "operator"]
