"""Ingestion: map a source table onto the transaction schema and quarantine bad rows."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
