"""Feature engineering pipeline wiring."""

from kedro.pipeline import Pipeline, node, pipeline

from .nodes import create_features


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                create_features,
                inputs=["validated_transactions", "params:features"],
                outputs="transaction_features",
                name="create_features_node",
            ),
        ]
    )
