"""Data split pipeline wiring."""

from kedro.pipeline import Pipeline, node, pipeline

from .nodes import split_out_of_time


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                split_out_of_time,
                inputs=["transaction_features", "params:split"],
                outputs=["development_set", "test_set", "split_plan"],
                name="split_out_of_time_node",
            ),
        ]
    )
