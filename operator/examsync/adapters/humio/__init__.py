"""Humio/LogScale structured ingest (audit sink): the client."""
