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
        A pipeline with the single node ``simulation.simulate_transactions_node``.
    """
    return Pipeline(
        [
            Node(
                func=simulate_transactions,
                inputs="params:simulation",
                outputs="raw_transactions",
                name="simulate_transactions_node",
            )
        ],
        # A namespace per stage: Kedro-Viz collapses the stage into one box and
        # `kedro run --namespaces simulation` runs it; dataset names stay global.
        namespace="simulation",
        prefix_datasets_with_namespace=False,
        tags=["simulation"],
    )
