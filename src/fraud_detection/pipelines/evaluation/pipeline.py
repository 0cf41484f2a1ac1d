"""Evaluation pipeline wiring."""

from kedro.pipeline import Pipeline, node

from .nodes import (
    build_reference_profile,
    evaluate_on_test,
    plot_confusion_matrix,
    plot_feature_importance,
    plot_pr_curves,
    plot_roc_curves,
    plot_score_distribution,
    score_test_set,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                score_test_set,
                inputs=["trained_candidates", "test_set"],
                outputs="test_predictions",
                name="score_test_set_node",
            ),
            node(
                evaluate_on_test,
                inputs=[
                    "test_predictions",
                    "decision_thresholds",
                    "model_selection",
                    "params:evaluation",
                ],
                outputs=["test_metrics", "evaluation_report"],
                name="evaluate_on_test_node",
            ),
            node(
                plot_pr_curves,
                inputs=["test_predictions", "model_selection"],
                outputs="pr_curve_plot",
                name="plot_pr_curves_node",
            ),
            node(
                plot_roc_curves,
                inputs=["test_predictions", "model_selection"],
                outputs="roc_curve_plot",
                name="plot_roc_curves_node",
            ),
            node(
                plot_confusion_matrix,
                inputs=["evaluation_report"],
                outputs="confusion_matrix_plot",
                name="plot_confusion_matrix_node",
            ),
            node(
                plot_feature_importance,
                inputs=["trained_candidates", "model_selection", "params:evaluation"],
                outputs="feature_importance_plot",
                name="plot_feature_importance_node",
            ),
            node(
                build_reference_profile,
                inputs=[
                    "test_set",
                    "test_predictions",
                    "model_selection",
                    "evaluation_report",
                    "selected_features",
                    "params:monitoring",
                ],
                outputs="reference_profile",
                name="build_reference_profile_node",
            ),
            node(
                plot_score_distribution,
                inputs=["test_predictions", "model_selection", "decision_thresholds"],
                outputs="score_distribution_plot",
                name="plot_score_distribution_node",
            ),
        ],
        # A namespace per stage: Kedro-Viz collapses the stage into one box and
        # `kedro run --namespaces evaluation` runs it; dataset names stay global.
        namespace="evaluation",
        prefix_datasets_with_namespace=False,
        tags=["evaluation"],
    )
