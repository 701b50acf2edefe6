"""One folder per adapter of an outside system (examsync.adapters)."""
