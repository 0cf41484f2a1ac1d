"""Feature engineering pipeline wiring."""

from kedro.pipeline import Pipeline, node

from .nodes import create_features


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                create_features,
                inputs=["labelled_transactions", "params:features"],
                outputs="transaction_features",
                name="create_features_node",
            ),
        ],
        # A namespace per stage: Kedro-Viz collapses the stage into one box and
        # `kedro run --namespaces feature_engineering` runs it; dataset names stay global.
        namespace="feature_engineering",
        prefix_datasets_with_namespace=False,
        tags=["feature_engineering"],
    )
