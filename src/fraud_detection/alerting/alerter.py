"""Routes alerts to the sinks configured for their event, with bounded retries.

The rule users rely on: sending an alert never raises. A sink that is down is retried
with exponential back-off within a bounded number of attempts and total time, then
logged; the run's own error (the reason for the alert) is what the caller re-raises.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from fraud_detection.alerting.events import EVENT_TYPES, Alert, redact_alert
from fraud_detection.alerting.sinks import (
    EmailSink,
    LogSink,
    Sink,
    WebhookSink,
    is_transient,
)
from fraud_detection.config import load_project_config

logger = logging.getLogger(__name__)

SINK_NAMES = ("log", "webhook", "email")
_TOP_KEYS = {"mlflow_ui_url", "retry", "sinks", "events"}
_WEBHOOK_KEYS = {"enabled", "url", "credentials", "format", "timeout_seconds"}
_EMAIL_KEYS = {
    "enabled",
    "host",
    "port",
    "security",
    "sender",
    "recipients",
    "credentials",
    "username",
    "password",
    "ca_file",
    "timeout_seconds",
}


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries of one sink: at most ``attempts`` tries and
    ``max_total_seconds``, waiting ``initial_wait_seconds`` doubled each time up to
    ``max_wait_seconds``."""

    attempts: int = 3
    initial_wait_seconds: float = 1.0
    max_wait_seconds: float = 10.0
    max_total_seconds: float = 60.0

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> RetryPolicy:
        raw = dict(raw or {})
        _reject_unknown(raw, {f.name for f in fields(cls)}, "alerting.retry")
        policy = cls(**{k: (int(v) if k == "attempts" else float(v)) for k, v in raw.items()})
        if policy.attempts < 1:
            raise ValueError("alerting.retry.attempts must be at least 1")
        return policy


class Alerter:
    """Sends each alert to the log and to the sinks its event is routed to.

    Args:
        sinks: Configured sinks by name (``webhook``, ``email``); the log sink is
            always added.
        routes: Event type to the names of the sinks it goes to, besides the log. A
            route naming a sink that is not configured is skipped, so the base
            configuration can route to the webhook before ``ALERT_WEBHOOK_URL`` is set.
        retry: The retry policy of every sink.
        mlflow_ui_url: Base URL of the MLflow UI, for links in alerts.
    """

    def __init__(
        self,
        sinks: Mapping[str, Sink] | None = None,
        routes: Mapping[str, list[str]] | None = None,
        retry: RetryPolicy | None = None,
        mlflow_ui_url: str | None = None,
    ) -> None:
        self.sinks: dict[str, Sink] = {"log": LogSink(), **(sinks or {})}
        self.routes = {event: list(names) for event, names in (routes or {}).items()}
        self.retry = retry or RetryPolicy()
        self.mlflow_ui_url = mlflow_ui_url

    @classmethod
    def log_only(cls) -> Alerter:
        """The fallback when the alerting configuration cannot be read."""
        return cls()

    def sinks_for(self, event: str) -> list[str]:
        """The configured sinks an event goes to, the log first."""
        names = ["log"] + [n for n in self.routes.get(event, []) if n != "log"]
        return [n for n in dict.fromkeys(names) if n in self.sinks]

    def send(self, alert: Alert) -> dict[str, bool]:
        """Sends ``alert`` to its sinks; never raises.

        Returns:
            Whether each sink it was routed to accepted it.
        """
        alert = redact_alert(alert)  # no sink (log, webhook, email) gets a URL's password
        results: dict[str, bool] = {}
        for name in self.sinks_for(alert.event):
            results[name] = self._send_one(self.sinks[name], alert)
        return results

    def _send_one(self, sink: Sink, alert: Alert) -> bool:
        policy = self.retry
        retrying = Retrying(
            stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.max_total_seconds),
            wait=wait_exponential(
                multiplier=policy.initial_wait_seconds, max=policy.max_wait_seconds
            ),
            retry=retry_if_exception(is_transient),
            reraise=True,
            before_sleep=lambda state: logger.warning(
                "Alert sink %s failed (attempt %d): %s; retrying",
                sink.name,
                state.attempt_number,
                state.outcome.exception() if state.outcome else "?",
            ),
        )
        try:
            retrying(sink.send, alert)
        except Exception as exc:  # a failing sink must never fail the run
            attempts = retrying.statistics.get("attempt_number", 1)
            logger.error(
                "Alert sink %s could not send the %s alert after %d attempt(s): %s: %s",
                sink.name,
                alert.event,
                attempts,
                type(exc).__name__,
                exc,
                extra={"alert_event": alert.event, "alert_sink": sink.name},
            )
            return False
        return True


def _reject_unknown(raw: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"Unknown key(s) in {where}: {unknown}; expected some of {sorted(known)}")


def _with_credentials(
    section: dict[str, Any], credentials: Mapping[str, Any], where: str
) -> dict[str, Any]:
    """Merges the credentials.yml entry a sink names (``credentials: alerting_smtp``)
    into its settings; secrets stay in credentials.yml."""
    name = section.pop("credentials", None)
    if name is None:
        return section
    entry = credentials.get(name)
    if not isinstance(entry, Mapping):
        raise ValueError(
            f"{where}.credentials names '{name}', which is not an entry of credentials.yml"
        )
    return {
        **{k: v for k, v in entry.items() if v not in (None, "")},
        **{k: v for k, v in section.items() if v not in (None, "")},
    }


def _recipients(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(v).strip() for v in items if str(v).strip()]


def _webhook(raw: Mapping[str, Any], credentials: Mapping[str, Any]) -> WebhookSink | None:
    section = dict(raw)
    _reject_unknown(section, _WEBHOOK_KEYS, "alerting.sinks.webhook")
    section = _with_credentials(section, credentials, "alerting.sinks.webhook")
    if not _truthy(section.pop("enabled", True)) or not section.get("url"):
        return None
    return WebhookSink(
        url=str(section["url"]),
        format=str(section.get("format", "slack")),
        timeout_seconds=float(section.get("timeout_seconds", 10)),
    )


def _email(raw: Mapping[str, Any], credentials: Mapping[str, Any]) -> EmailSink | None:
    section = dict(raw)
    _reject_unknown(section, _EMAIL_KEYS, "alerting.sinks.email")
    section = _with_credentials(section, credentials, "alerting.sinks.email")
    if not _truthy(section.pop("enabled", True)) or not section.get("host"):
        return None
    recipients = _recipients(section.get("recipients"))
    missing = [
        key
        for key, value in (("sender", section.get("sender")), ("recipients", recipients))
        if not value
    ]
    if missing:
        raise ValueError(
            f"alerting.sinks.email has a host but no {' and no '.join(missing)}: set "
            "ALERT_EMAIL_FROM / ALERT_EMAIL_TO in .env (see .env.example) or disable the sink"
        )
    security = str(section.get("security") or "starttls")
    default_port = {"starttls": 587, "ssl": 465, "none": 25}.get(security, 587)
    return EmailSink(
        host=str(section["host"]),
        port=int(section.get("port") or default_port),
        sender=str(section["sender"]),
        recipients=recipients,
        security=security,
        username=section.get("username"),
        password=section.get("password"),
        ca_file=section.get("ca_file"),
        timeout_seconds=float(section.get("timeout_seconds", 10)),
    )


def _truthy(value: Any) -> bool:
    # Values from ${oc.env:...} arrive as strings.
    if isinstance(value, str):
        return value.strip().lower() not in {"", "0", "false", "no", "off"}
    return bool(value)


def build_alerter(
    config: Mapping[str, Any] | None, credentials: Mapping[str, Any] | None = None
) -> Alerter:
    """Builds the alerter from the ``alerting`` section of ``alerting.yml``.

    Raises:
        ValueError: On an unknown key, event or sink name, or a half-configured sink,
            naming it, so a typo fails at start-up rather than when an alert is due.
    """
    config = dict(config or {})
    credentials = credentials or {}
    _reject_unknown(config, _TOP_KEYS, "alerting")
    sinks_raw = dict(config.get("sinks") or {})
    _reject_unknown(sinks_raw, {"webhook", "email"}, "alerting.sinks")
    sinks: dict[str, Sink] = {}
    if (webhook := _webhook(sinks_raw.get("webhook") or {}, credentials)) is not None:
        sinks["webhook"] = webhook
    if (email := _email(sinks_raw.get("email") or {}, credentials)) is not None:
        sinks["email"] = email
    routes = {str(k): list(v or []) for k, v in dict(config.get("events") or {}).items()}
    _reject_unknown(routes, set(EVENT_TYPES), "alerting.events")
    for event, names in routes.items():
        bad = sorted(set(names) - set(SINK_NAMES))
        if bad:
            raise ValueError(
                f"alerting.events.{event} names unknown sink(s) {bad}; sinks are {list(SINK_NAMES)}"
            )
    alerter = Alerter(
        sinks,
        routes,
        RetryPolicy.from_dict(config.get("retry")),
        config.get("mlflow_ui_url") or None,
    )
    logger.info("Alerting: log%s", "".join(f", {name}" for name in sinks) or " only")
    return alerter


def alerter_from_config_loader(config_loader: Any) -> Alerter:
    """The alerter of a Kedro environment, from its config loader."""
    try:
        section = config_loader["alerting"]
    except KeyError:
        section = {}
    config = (section or {}).get("alerting") or {}
    sinks = config.get("sinks") or {}
    needs_credentials = any(isinstance(s, Mapping) and s.get("credentials") for s in sinks.values())
    credentials = config_loader["credentials"] if needs_credentials else {}
    return build_alerter(config, credentials)


def load_alerter(project_path: str | Path, env: str | None = None) -> Alerter:
    """The alerter of a project's environment, outside a Kedro session (Airflow
    callbacks): loads ``.env`` and the configuration as the session would."""
    return alerter_from_config_loader(load_project_config(project_path, env))
