"""Registers every pipeline factory with the runner (imported lazily by the runner)."""

from __future__ import annotations

# Each pipeline module registers its factory in FACTORIES on import.
from examsync.pipelines import fs_inspera, fs_wiseflow, praktikportalen_wiseflow
from examsync.pipelines.runner import FACTORIES

__all__ = ["FACTORIES", "fs_inspera", "fs_wiseflow", "praktikportalen_wiseflow"]
