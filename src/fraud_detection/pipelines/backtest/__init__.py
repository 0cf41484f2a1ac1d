"""Backtest: every family retrained and scored on K consecutive test windows."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
