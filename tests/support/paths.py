"""Where things are in the repository, for tests that read its files (chart, docs, lock files)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
"""The repository's root: README.md, charts/, crds/, docs/, operator/, sandbox/ and tests/ are in it."""
