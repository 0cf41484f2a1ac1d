"""Batch scoring pipeline wiring: ``kedro run --pipelines batch_scoring``."""

from kedro.pipeline import Pipeline, node

from .nodes import build_features_to_score, score_transactions


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                build_features_to_score,
                inputs=["batch_scoring_transactions", "params:features", "params:batch_scoring"],
                outputs="batch_scoring_features",
                name="build_features_to_score_node",
            ),
            node(
                score_transactions,
                inputs=["batch_scoring_features", "current_champion"],
                outputs="batch_predictions",
                name="score_transactions_node",
            ),
        ],
        # A namespace per stage: Kedro-Viz collapses the stage into one box and
        # `kedro run --namespaces batch_scoring` runs it; dataset names stay global.
        namespace="batch_scoring",
        prefix_datasets_with_namespace=False,
        tags=["batch_scoring"],
    )
