"""The operator layer: kopf handlers that map Institution events to pipeline runs and runs to status."""
