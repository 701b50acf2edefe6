"""Pipelines end to end against the sandbox, the runner and its task rules (examsync.pipelines)."""
