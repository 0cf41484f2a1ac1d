"""Seeded transaction simulator with labelled fraud scenarios."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
