"""One simulator per outside system, each named as its client's package in `examsync.adapters`."""
