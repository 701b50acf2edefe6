"""The Helm chart, the CRD, the docs, the examples and the shipped alert rules and dashboard."""
