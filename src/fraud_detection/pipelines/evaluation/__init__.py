"""Evaluation on the out-of-time test window: metrics and plots for every model."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
