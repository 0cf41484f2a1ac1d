"""Out-of-time split: training history, a label-delay gap, and a test window."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
