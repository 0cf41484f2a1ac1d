"""Monitoring pipeline wiring: ``kedro run --pipelines monitoring``."""

from kedro.pipeline import Pipeline, node

from .nodes import (
    attach_current_labels,
    build_window_features,
    compare_challenger,
    decide_live_promotion,
    detect_drift,
    plot_drift,
    render_drift_report,
    score_window,
    validate_current_transactions,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                validate_current_transactions,
                inputs=["current_transactions", "params:ingestion"],
                outputs=[
                    "current_validated_transactions",
                    "current_quarantined_transactions",
                    "current_data_quality_report",
                ],
                name="validate_current_transactions_node",
            ),
            node(
                attach_current_labels,
                inputs=["current_validated_transactions", "transaction_labels", "params:labels"],
                outputs="current_labelled_transactions",
                name="attach_current_labels_node",
            ),
            node(
                build_window_features,
                inputs=[
                    "current_labelled_transactions",
                    "labelled_transactions",
                    "params:features",
                    "params:monitoring",
                ],
                outputs="monitoring_window_features",
                name="build_window_features_node",
            ),
            node(
                score_window,
                inputs=["monitoring_window_features", "current_champion"],
                outputs="monitoring_window_scores",
                name="score_window_node",
            ),
            # The registry's challenger (if any) on the same transactions as the champion.
            node(
                compare_challenger,
                inputs=["monitoring_window_scores", "current_challenger"],
                outputs="challenger_comparison",
                name="compare_challenger_node",
            ),
            # With params:promotion.live_evidence.required, the challenger becomes
            # champion when that evidence is enough; the dataset moves the alias.
            node(
                decide_live_promotion,
                inputs=["challenger_comparison", "params:promotion"],
                outputs=["live_promotion_report", "live_champion_alias"],
                name="decide_live_promotion_node",
            ),
            node(
                detect_drift,
                inputs=[
                    "monitoring_window_scores",
                    "champion_reference_profile",
                    "params:monitoring",
                ],
                outputs=["monitoring_verdict", "monitoring_metrics"],
                name="detect_drift_node",
            ),
            node(
                plot_drift,
                inputs="monitoring_verdict",
                outputs="drift_plot",
                name="plot_drift_node",
            ),
            node(
                render_drift_report,
                inputs="monitoring_verdict",
                outputs="drift_report",
                name="render_drift_report_node",
            ),
        ],
        # A namespace per stage: Kedro-Viz collapses the stage into one box and
        # `kedro run --namespaces monitoring` runs it; dataset names stay global.
        namespace="monitoring",
        prefix_datasets_with_namespace=False,
        tags=["monitoring"],
    )
