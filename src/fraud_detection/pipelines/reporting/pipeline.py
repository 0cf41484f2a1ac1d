"""Reporting pipeline wiring."""

from kedro.pipeline import Pipeline, node

from .nodes import explain_models, render_model_report, summarise_data


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                summarise_data,
                inputs=["labelled_transactions", "data_quality_report", "split_plan"],
                outputs="data_summary",
                name="summarise_data_node",
            ),
            node(
                explain_models,
                inputs=["trained_candidates", "model_selection", "test_set", "params:reporting"],
                outputs="feature_effects",
                name="explain_models_node",
            ),
            node(
                render_model_report,
                inputs=[
                    "data_summary",
                    "evaluation_report",
                    "model_selection",
                    "decision_thresholds",
                    "search_results",
                    "test_predictions",
                    "feature_effects",
                    "promotion_report",
                    "monitoring_verdict",
                    "challenger_comparison",
                    "backtest_results",
                    "params:reporting",
                ],
                outputs="model_report",
                name="render_model_report_node",
            ),
        ],
        # A namespace per stage: Kedro-Viz collapses the stage into one box and
        # `kedro run --namespaces reporting` runs it; dataset names stay global.
        namespace="reporting",
        prefix_datasets_with_namespace=False,
        tags=["reporting"],
    )
