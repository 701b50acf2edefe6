"""The HTTP layer every adapter shares (examsync.adapters.upstream)."""
