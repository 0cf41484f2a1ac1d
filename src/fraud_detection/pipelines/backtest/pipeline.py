"""Backtest pipeline wiring (``kedro run --pipelines backtest``; not in ``__default__``:
it retrains every family once per window)."""

from kedro.pipeline import Pipeline, node

from .nodes import plan_backtest, run_backtest, summarise_backtest


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                plan_backtest,
                inputs=["transaction_features", "params:split", "params:backtest"],
                outputs="backtest_plan",
                name="plan_backtest_node",
            ),
            node(
                run_backtest,
                inputs=[
                    "transaction_features",
                    "backtest_plan",
                    "params:split",
                    "params:training",
                    "params:backtest",
                ],
                outputs=["backtest_predictions", "backtest_windows"],
                name="run_backtest_node",
            ),
            node(
                summarise_backtest,
                inputs=["backtest_predictions", "backtest_windows", "params:backtest"],
                outputs=["backtest_results", "backtest_metrics", "backtest_window_runs"],
                name="summarise_backtest_node",
            ),
        ],
        # A namespace per stage: Kedro-Viz collapses the stage into one box and
        # `kedro run --namespaces backtest` runs it; dataset names stay global.
        namespace="backtest",
        prefix_datasets_with_namespace=False,
        tags=["backtest"],
    )
