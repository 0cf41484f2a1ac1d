"""Training: time-aware hyperparameter search, final fits, selection, thresholds."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
