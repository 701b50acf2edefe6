"""Pipelines: one module per flow of data, all behind `base.Pipeline`."""
