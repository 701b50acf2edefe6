"""The Institution resource's types: its spec and status as pydantic models, the single source of
the CRD's schema (``examsync.crd``), and the enums both speak (condition types, reasons)."""
