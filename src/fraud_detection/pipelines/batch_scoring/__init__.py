"""Batch scoring: the champion's predictions for a table of transactions."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
