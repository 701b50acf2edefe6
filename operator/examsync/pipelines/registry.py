"""Registers every pipeline factory with the runner (imported lazily by the runner)."""

from __future__ import annotations

from examsync.pipelines.runner import FACTORIES

# Each pipeline module registers itself on import.
for _module in ("fs_inspera", "fs_wiseflow", "praktikportalen_wiseflow"):
    try:
        __import__(f"examsync.pipelines.{_module}")
    except ModuleNotFoundError as exc:  # a pipeline not built yet
        if exc.name != f"examsync.pipelines.{_module}":
            raise

__all__ = ["FACTORIES"]
