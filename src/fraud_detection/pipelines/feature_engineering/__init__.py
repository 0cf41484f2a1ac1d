"""Feature engineering: point-in-time features from the validated transactions."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
