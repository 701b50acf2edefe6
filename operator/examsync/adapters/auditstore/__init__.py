"""The audit history store (contracts/sinks.md, "Audit history store"): every audit record in a SQL
database, SQLite or PostgreSQL, so "what happened to this assessment, and when" has an answer
without a log platform.

- rows.py: an `AuditRecord` as a row and back; schema.py: the tables and their versioned migrations;
- store.py: `AuditStore`, one per process: batched writes, schema on start, retention;
- history.py: the reads `examsync history` (commands/history.py) prints.

Runs reach it through `sinks.store.StoreSink`, built with the other sinks (`sinks.sink_factory`).
Its URL, `examsync.store_url.StoreUrl`, is a setting (EXAMSYNC_AUDIT_DB, `--audit-db`) and lives
outside it, so the settings name it without loading SQLAlchemy.
"""
