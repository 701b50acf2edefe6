"""Across layers: faults, crashes and lost answers; nothing lost, nothing duplicated."""
