"""Tabular MLOps template: pipeline stages, schema, service."""
