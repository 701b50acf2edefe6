"""Audit records to Humio and Slack notifications (examsync.sinks)."""
