"""Wiring of the simulator: ``params:simulation`` -> ``raw_transactions``."""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from .nodes import simulate_transactions


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Create the simulation pipeline.

    Args:
        **kwargs: Unused; accepted for Kedro's pipeline discovery.

    Returns:
        A pipeline with the single node ``simulate_transactions_node``.
    """
    return Pipeline(
        [
            Node(
                func=simulate_transactions,
                inputs="params:simulation",
                outputs="raw_transactions",
                name="simulate_transactions_node",
            )
        ]
    )
