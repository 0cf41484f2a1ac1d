"""Feature engineering pipeline wiring."""

from kedro.pipeline import Pipeline, node

from .nodes import add_source_columns_node, create_features


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                create_features,
                inputs=["labelled_transactions", "params:features"],
                outputs="point_in_time_features",
                name="create_features_node",
            ),
            # A separate node: your own source columns (params:source_columns) join the
            # point-in-time features here, behind the leakage guard.
            node(
                add_source_columns_node,
                inputs=[
                    "point_in_time_features",
                    "validated_transactions",
                    "params:source_columns",
                    "params:split",
                ],
                outputs="transaction_features",
                name="add_source_columns_node",
            ),
        ],
        # A namespace per stage: Kedro-Viz collapses the stage into one box and
        # `kedro run --namespaces feature_engineering` runs it; dataset names stay global.
        namespace="feature_engineering",
        prefix_datasets_with_namespace=False,
        tags=["feature_engineering"],
    )
