"""``AlertingHook``: turns what happens in a Kedro run into alerts.

- a start-up check fails (``StartupValidationError``): ``service_unreachable``;
- a node fails: ``pipeline_failed``, or ``data_quality_failed`` for the ingestion's
  ``DataQualityError`` (with the counts and reasons it carries);
- the promotion decision reaches the registry (``champion_alias`` saved):
  ``model_promoted`` or ``challenger_rejected``;
- a monitoring verdict with ``drift_detected: true`` is saved: ``drift_detected``.

Every method is guarded: an alert that cannot be built or sent is logged, and the
run's own error propagates unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from kedro.framework.hooks import hook_impl

import fraud_detection.alerting.events as events  # noqa: PLR0402 (not through the package: no cycle)
from fraud_detection.alerting.alerter import Alerter, alerter_from_config_loader
from fraud_detection.alerting.events import Alert, RunInfo
from fraud_detection.errors import StartupValidationError

logger = logging.getLogger(__name__)

# The registry dataset whose save moves the champion alias (or records a rejection).
PROMOTION_DATASET = "champion_alias"
# The monitoring pipeline's machine-readable verdict.
DRIFT_VERDICT_DATASET = "monitoring_verdict"


def active_mlflow_run() -> tuple[str | None, str | None, str | None]:
    """Run id, experiment id and tracking URI of the active MLflow run, if any."""
    try:
        import mlflow

        run = mlflow.active_run()
        if run is None:
            return None, None, None
        return run.info.run_id, run.info.experiment_id, mlflow.get_tracking_uri()
    except Exception:  # MLflow is optional for alerting
        return None, None, None


class AlertingHook:
    """Sends alerts for start-up failures, failed runs, data-quality stops, drift
    verdicts and promotion decisions, through the sinks of ``alerting.yml``."""

    def __init__(self) -> None:
        self._reset(environment="local")

    def _reset(self, environment: str) -> None:
        self._alerter: Alerter = Alerter.log_only()
        self._run = RunInfo(environment=environment)
        self._failed_node: str | None = None
        self._last_node: str | None = None

    @hook_impl(wrapper=True)
    def after_context_created(self, context: Any) -> Any:
        # A wrapper around the other hooks, so it sees the start-up validation fail and
        # reads the configuration after `.env` has been loaded by that hook.
        self._reset(environment=context.env or "local")
        try:
            result = yield
        except StartupValidationError as error:
            try:
                self._alerter = alerter_from_config_loader(context.config_loader)
            except Exception as exc:
                logger.error(
                    "Alerting configuration unusable (%s); "
                    "the start-up failure goes to the log only",
                    exc,
                )
            self._send(events.service_unreachable, error.problems, self._run, error, error=error)
            raise
        # Outside the guard on purpose: a typo in alerting.yml fails the run at start-up.
        self._alerter = alerter_from_config_loader(context.config_loader)
        return result

    @hook_impl(trylast=True)  # after kedro-mlflow's, which starts the MLflow run
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        self._run = replace(
            self._run,
            run_id=run_params.get("run_id"),
            environment=run_params.get("env") or self._run.environment,
        )
        self._capture_mlflow_run()

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        self._last_node = node.name
        self._capture_mlflow_run()

    @hook_impl
    def on_node_error(self, error: Exception, node: Any) -> None:
        self._failed_node = node.name
        self._capture_mlflow_run()

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        if dataset_name == PROMOTION_DATASET and isinstance(data, Mapping) and "promote" in data:
            self._capture_mlflow_run()
            self._send(events.promotion_decided, data, self._run)
        elif (
            dataset_name == DRIFT_VERDICT_DATASET
            and isinstance(data, Mapping)
            and data.get("drift_detected")
        ):
            self._capture_mlflow_run()
            self._send(events.drift_detected, data, self._run)

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any]) -> None:
        if run_params.get("run_id"):
            self._run = replace(self._run, run_id=run_params["run_id"])
        # A node error names its node; a failed load or save (no node error) names the
        # node that was running.
        node = self._failed_node or self._last_node
        self._send(events.alert_for_error, error, node, self._run, error=error)

    def _capture_mlflow_run(self) -> None:
        if self._run.mlflow_run_id is not None:
            return
        run_id, experiment_id, tracking_uri = active_mlflow_run()
        if run_id is not None:
            url = events.mlflow_run_url(
                self._alerter.mlflow_ui_url, tracking_uri, experiment_id, run_id
            )
            self._run = replace(self._run, mlflow_run_id=run_id, mlflow_run_url=url)

    def _send(
        self, build: Callable[..., Alert], *args: Any, error: BaseException | None = None
    ) -> None:
        try:
            alert = build(*args)
            self._alerter.send(alert)
            if error is not None:
                setattr(error, events.ALERTED_MARKER, True)
        except Exception:
            logger.exception("Could not build or send an alert; the run's outcome is unchanged")
