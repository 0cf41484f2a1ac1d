"""Alerts on failed runs, data-quality stops, drift, promotions and start-up failures.

Sinks (structured log always, chat webhook, SMTP email) and which events go where are
configured per environment in ``conf/<env>/alerting.yml``; secrets come from
``credentials.yml`` / ``.env``. ``AlertingHook`` sends alerts from Kedro runs;
``airflow_failure_callback`` from Airflow tasks.
"""

from fraud_detection.alerting.airflow import airflow_failure_callback
from fraud_detection.alerting.alerter import (
    Alerter,
    RetryPolicy,
    build_alerter,
    load_alerter,
)
from fraud_detection.alerting.events import EVENT_TYPES, Alert, RunInfo, alert_for_error
from fraud_detection.alerting.hook import AlertingHook

__all__ = [
    "EVENT_TYPES",
    "Alert",
    "Alerter",
    "AlertingHook",
    "RetryPolicy",
    "RunInfo",
    "airflow_failure_callback",
    "alert_for_error",
    "build_alerter",
    "load_alerter",
]
