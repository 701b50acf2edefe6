"""The `examsync` command line and its settings (examsync.cli, examsync.commands, examsync.settings)."""
