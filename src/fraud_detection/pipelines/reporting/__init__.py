"""Reporting: one self-contained HTML model report per training run."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
