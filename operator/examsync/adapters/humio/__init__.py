"""Humio/LogScale structured ingest (audit sink): the client and its sandbox simulator."""
