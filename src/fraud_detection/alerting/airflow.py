"""Airflow task failure callback that alerts through the project's sinks.

Use it in the DAG as ``on_failure_callback``::

    from functools import partial
    from fraud_detection.alerting import airflow_failure_callback

    default_args = {
        "on_failure_callback": partial(airflow_failure_callback, project_path=PROJECT_PATH, env=ENV)
    }

``project_path`` and ``env`` default to ``KEDRO_PROJECT_PATH`` / ``KEDRO_ENV`` and then
the working directory / ``local``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import fraud_detection.alerting.events as events  # noqa: PLR0402 (not through the package: no cycle)
from fraud_detection.alerting.alerter import Alerter, load_alerter
from fraud_detection.alerting.events import RunInfo

logger = logging.getLogger(__name__)


class AirflowTaskFailed(RuntimeError):
    """Stands in for the error when Airflow reports a failure without one (a killed
    worker, a timeout)."""


def airflow_failure_callback(
    context: Mapping[str, Any],
    *,
    project_path: str | Path | None = None,
    env: str | None = None,
    mlflow_run_id: str | None = None,
) -> None:
    """Sends the alert for a failed Airflow task; never raises.

    The alert names the task (``dag_id.task_id``), the DAG run id as run id, and the
    MLflow run (``mlflow_run_id``, else ``MLFLOW_RUN_ID``). A failure the Kedro hook
    already alerted on in this process (the same exception object) is not sent twice.

    Args:
        context: The Airflow task context (``task_instance``, ``dag_run``, ``exception``).
        project_path: The Kedro project, for its ``conf/`` and ``.env``.
        env: The Kedro environment the task ran with.
        mlflow_run_id: The DAG run's MLflow run, when known.
    """
    try:
        error = context.get("exception")
        if error is not None and getattr(error, events.ALERTED_MARKER, False):
            logger.info("Task failure already alerted by the Kedro run: %s", error)
            return
        ti = context.get("task_instance") or context.get("ti")
        dag_run = context.get("dag_run")
        dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None) or "dag"
        task_id = getattr(ti, "task_id", None) or "task"
        environment = env or os.environ.get("KEDRO_ENV") or "local"
        run = RunInfo(
            environment=environment,
            run_id=getattr(dag_run, "run_id", None) or context.get("run_id"),
            mlflow_run_id=mlflow_run_id or os.environ.get("MLFLOW_RUN_ID") or None,
        )
        try:
            alerter = load_alerter(
                project_path or os.environ.get("KEDRO_PROJECT_PATH") or Path.cwd(), environment
            )
        except Exception as exc:
            logger.error(
                "Alerting configuration unusable (%s); the task failure goes to the log only", exc
            )
            alerter = Alerter.log_only()
        if run.mlflow_run_id:
            url = events.mlflow_run_url(
                alerter.mlflow_ui_url,
                os.environ.get("MLFLOW_TRACKING_URI"),
                os.environ.get("MLFLOW_EXPERIMENT_ID"),
                run.mlflow_run_id,
            )
            run = RunInfo(run.environment, run.run_id, run.mlflow_run_id, url)
        failure = (
            error
            if isinstance(error, BaseException)
            else AirflowTaskFailed(
                f"Airflow task {dag_id}.{task_id} failed: {error or 'no exception reported'}"
            )
        )
        alert = events.alert_for_error(failure, f"{dag_id}.{task_id}", run)
        extra = {"try number": str(getattr(ti, "try_number", "-"))}
        if getattr(ti, "log_url", None):
            extra["task log"] = str(ti.log_url)
        alert = events.Alert(**{**alert.__dict__, "facts": {**alert.facts, **extra}})
        alerter.send(alert)
        if error is not None:
            setattr(error, events.ALERTED_MARKER, True)
    except Exception:
        logger.exception("Airflow failure callback could not alert; the task's own failure stands")
