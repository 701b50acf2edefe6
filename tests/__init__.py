"""examsync's tests, one folder per layer of the package (see docs/architecture.md)."""
