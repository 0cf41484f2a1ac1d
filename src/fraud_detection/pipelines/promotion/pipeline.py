"""Promotion pipeline wiring."""

from kedro.pipeline import Pipeline, node

from .nodes import decide_promotion, record_promotion


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                decide_promotion,
                inputs=[
                    "fraud_model",
                    "current_champion",
                    "test_set",
                    "split_plan",
                    "params:promotion",
                ],
                outputs="promotion_report",
                name="decide_promotion_node",
            ),
            node(
                record_promotion,
                inputs="promotion_report",
                # Each registry dataset moves its alias when the decision's stage names it.
                outputs=["champion_alias", "challenger_alias"],
                name="record_promotion_node",
            ),
        ],
        # A namespace per stage: Kedro-Viz collapses the stage into one box and
        # `kedro run --namespaces promotion` runs it; dataset names stay global.
        namespace="promotion",
        prefix_datasets_with_namespace=False,
        tags=["promotion"],
    )
