"""What the `examsync` commands do, apart from parsing their flags (``examsync.cli``)."""
