"""The Institution's spec and status models (examsync.api)."""
