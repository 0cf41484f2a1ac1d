"""Training pipeline wiring."""

from kedro.pipeline import Pipeline, node

from .nodes import (
    choose_thresholds,
    fit_candidates,
    merge_candidates,
    package_model,
    select_model,
    train_spark_candidates,
    tune_candidates,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                tune_candidates,
                inputs=["development_set", "split_plan", "params:training"],
                outputs=["driver_search_results", "driver_validation_predictions"],
                name="tune_candidates_node",
            ),
            node(
                fit_candidates,
                inputs=[
                    "development_set",
                    "split_plan",
                    "driver_search_results",
                    "params:training",
                ],
                outputs="driver_trained_candidates",
                name="fit_candidates_node",
            ),
            # params:training.engine: spark adds XGBoost trained in Spark on the whole
            # feature table (docs/spark.md); with pandas it adds nothing.
            node(
                train_spark_candidates,
                inputs=["spark_feature_table", "split_plan", "params:training", "params:features"],
                outputs="spark_candidates",
                name="train_spark_candidates_node",
            ),
            node(
                merge_candidates,
                inputs=[
                    "driver_search_results",
                    "driver_validation_predictions",
                    "driver_trained_candidates",
                    "spark_candidates",
                ],
                outputs=["search_results", "validation_predictions", "trained_candidates"],
                name="merge_candidates_node",
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
