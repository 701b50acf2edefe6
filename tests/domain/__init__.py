"""The pure rules (examsync.domain), without I/O."""
