"""Promotion: challenger against the registry's champion on the same test rows."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
