"""Across layers: hostile upstream answers through `examsync sync` (huge, slow, deep, endless)."""
