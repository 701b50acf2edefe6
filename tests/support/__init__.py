"""What several suites share: harnesses and helpers, imported by their full dotted name
(`from tests.support.sync_runs import sync`); fixtures are in the conftest files."""
