"""Monitoring: drift of the champion's inputs and scores on a current window."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
