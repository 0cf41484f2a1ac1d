"""Ingestion pipeline wiring."""

from kedro.pipeline import Pipeline, node, pipeline

from .nodes import standardise_columns, validate_transactions


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                standardise_columns,
                inputs=["raw_transactions", "params:ingestion"],
                outputs="standardised_transactions",
                name="standardise_columns_node",
            ),
            node(
                validate_transactions,
                inputs=["standardised_transactions", "params:ingestion"],
                outputs=[
                    "validated_transactions",
                    "quarantined_transactions",
                    "data_quality_report",
                ],
                name="validate_transactions_node",
            ),
        ]
    )
