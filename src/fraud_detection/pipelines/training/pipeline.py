"""Training pipeline wiring."""

from kedro.pipeline import Pipeline, node

from .nodes import (
    choose_thresholds,
    fit_candidates,
    package_model,
    select_model,
    tune_candidates,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                tune_candidates,
                inputs=["development_set", "split_plan", "params:training"],
                outputs=["search_results", "validation_predictions"],
                name="tune_candidates_node",
            ),
            node(
                fit_candidates,
                inputs=["development_set", "split_plan", "search_results", "params:training"],
                outputs="trained_candidates",
                name="fit_candidates_node",
            ),
            node(
                choose_thresholds,
                inputs=["validation_predictions", "params:training"],
                outputs="decision_thresholds",
                name="choose_thresholds_node",
            ),
            node(
                select_model,
                inputs=["search_results", "trained_candidates", "decision_thresholds"],
                outputs=["model_selection", "selected_features"],
                name="select_model_node",
            ),
            node(
                package_model,
                inputs=[
                    "trained_candidates",
                    "model_selection",
                    "development_set",
                    "split_plan",
                ],
                outputs="fraud_model",
                name="package_model_node",
            ),
        ],
        # A namespace per stage: Kedro-Viz collapses the stage into one box and
        # `kedro run --namespaces training` runs it; dataset names stay global.
        namespace="training",
        prefix_datasets_with_namespace=False,
        tags=["training"],
    )
