"""Ingestion pipeline wiring."""

from kedro.pipeline import Pipeline, node

from .nodes import (
    attach_labels,
    collect_labels,
    enforce_quality_limit,
    standardise_columns,
    validate_transactions,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
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
                    "screened_transactions",
                    "quarantined_transactions",
                    "data_quality_report",
                ],
                name="validate_transactions_node",
            ),
            node(
                enforce_quality_limit,
                inputs=["screened_transactions", "data_quality_report", "params:ingestion"],
                outputs="validated_transactions",
                name="enforce_quality_limit_node",
            ),
            # Labels arrive apart (the label topic in conf/kafka): the new ones join the
            # store, and every validated transaction gets the labels known so far.
            node(
                collect_labels,
                inputs="raw_labels",
                outputs="transaction_labels",
                name="collect_labels_node",
            ),
            node(
                attach_labels,
                inputs=["validated_transactions", "transaction_labels", "params:labels"],
                outputs="labelled_transactions",
                name="attach_labels_node",
            ),
        ],
        # A namespace per stage: Kedro-Viz collapses the stage into one box and
        # `kedro run --namespaces ingestion` runs it; dataset names stay global.
        namespace="ingestion",
        prefix_datasets_with_namespace=False,
        tags=["ingestion"],
    )
