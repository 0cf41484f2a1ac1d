"""Data split pipeline wiring."""

from kedro.pipeline import Pipeline, node

from .nodes import split_out_of_time


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                split_out_of_time,
                inputs=["transaction_features", "params:split"],
                outputs=["development_set", "test_set", "split_plan"],
                name="split_out_of_time_node",
            ),
        ],
        # A namespace per stage: Kedro-Viz collapses the stage into one box and
        # `kedro run --namespaces data_split` runs it; dataset names stay global.
        namespace="data_split",
        prefix_datasets_with_namespace=False,
        tags=["data_split"],
    )
