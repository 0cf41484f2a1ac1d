"""Promotion pipeline wiring."""

from kedro.pipeline import Pipeline, node, pipeline

from .nodes import decide_promotion, record_promotion


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                decide_promotion,
                inputs=["fraud_model", "current_champion", "test_set", "params:promotion"],
                outputs="promotion_report",
                name="decide_promotion_node",
            ),
            node(
                record_promotion,
                inputs="promotion_report",
                outputs="champion_alias",
                name="record_promotion_node",
            ),
        ]
    )
