"""Where alerts go: the structured log, a chat webhook, email over SMTP.

Each sink sends one alert or raises; retries and the rule that a failing sink never
fails the run live in ``alerter.py``. The senders are small on purpose: the standard
library's ``urllib`` and ``smtplib`` post to any Slack/Teams incoming webhook or SMTP
relay, including the local receivers the tests run.
"""

from __future__ import annotations

import html
import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage
from typing import Any, Protocol

from fraud_detection.alerting.events import Alert

logger = logging.getLogger(__name__)

WEBHOOK_FORMATS = ("slack", "teams", "json")
SMTP_SECURITY = ("starttls", "ssl", "none")
_LOG_LEVELS = {"error": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO}


class Sink(Protocol):
    """Sends one alert; raises when it could not."""

    name: str

    def send(self, alert: Alert) -> None: ...


class LogSink:
    """Writes the alert as one structured log record (``alert`` and ``alert_event``
    fields in the JSON log), at the level of its severity."""

    name = "log"

    def __init__(self, logger_name: str = "fraud_detection.alerts") -> None:
        self._logger = logging.getLogger(logger_name)

    def send(self, alert: Alert) -> None:
        self._logger.log(
            _LOG_LEVELS.get(alert.severity, logging.WARNING),
            "Alert %s: %s",
            alert.event,
            alert.title,
            extra={"alert_event": alert.event, "alert": alert.to_dict()},
        )


def slack_payload(alert: Alert) -> dict[str, Any]:
    """Body for a Slack incoming webhook: ``text`` (notification) plus Block Kit
    blocks, within Slack's limits (header 150, section 3000 characters, 10 fields)."""
    facts = alert.all_facts()
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": alert.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": alert.summary[:3000]}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{k}*\n{v}"[:2000]}
                for k, v in list(facts.items())[:10]
            ],
        },
    ]
    if alert.table is not None:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"```{alert.table.as_text()[:2990]}```"},
            }
        )
    return {"text": alert.title, "blocks": blocks}


def teams_payload(alert: Alert) -> dict[str, Any]:
    """Body for a Microsoft Teams incoming webhook (Workflows or connector): a
    message carrying one Adaptive Card."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": alert.title,
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
        },
        {"type": "TextBlock", "text": alert.summary, "wrap": True},
        {
            "type": "FactSet",
            "facts": [{"title": k, "value": v} for k, v in alert.all_facts().items()],
        },
    ]
    if alert.table is not None:
        body.append(
            {
                "type": "TextBlock",
                "text": alert.table.as_text(),
                "fontType": "Monospace",
                "wrap": True,
            }
        )
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if alert.run.mlflow_run_url:
        card["actions"] = [
            {
                "type": "Action.OpenUrl",
                "title": "Open the MLflow run",
                "url": alert.run.mlflow_run_url,
            }
        ]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


class WebhookSink:
    """POSTs the alert as JSON to an incoming webhook.

    Args:
        url: The webhook URL (a secret: it comes from credentials.yml / ``.env``).
        format: ``slack`` (Block Kit), ``teams`` (Adaptive Card) or ``json`` (the
            alert's own fields, for custom receivers).
        timeout_seconds: Connect and read timeout of one attempt.
    """

    name = "webhook"

    def __init__(self, *, url: str, format: str = "slack", timeout_seconds: float = 10.0) -> None:
        if format not in WEBHOOK_FORMATS:
            raise ValueError(
                f"alerting.sinks.webhook.format must be one of {WEBHOOK_FORMATS}, got {format!r}"
            )
        self._url = url
        self._format = format
        self._timeout = float(timeout_seconds)

    def payload(self, alert: Alert) -> dict[str, Any]:
        if self._format == "slack":
            return slack_payload(alert)
        if self._format == "teams":
            return teams_payload(alert)
        return alert.to_dict()

    def send(self, alert: Alert) -> None:
        request = urllib.request.Request(
            self._url,
            data=json.dumps(self.payload(alert), default=str).encode("utf-8"),
            headers={"Content-Type": "application/json", "User-Agent": "fraud-detection-alerts"},
            method="POST",
        )
        # urlopen raises HTTPError for 4xx/5xx answers and URLError when nobody answers.
        with urllib.request.urlopen(request, timeout=self._timeout) as response:
            response.read()

    def __repr__(self) -> str:
        # The URL carries the webhook's secret token: never in logs.
        return f"WebhookSink(format={self._format!r})"


def _html_body(alert: Alert) -> str:
    rows = "".join(
        f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in alert.all_facts().items()
    )
    table = ""
    if alert.table is not None:
        head = "".join(f"<th align='left'>{html.escape(c)}</th>" for c in alert.table.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>"
            for row in alert.table.rows
        )
        table = f"<table border='1' cellpadding='4' cellspacing='0'><tr>{head}</tr>{body}</table>"
    summary = html.escape(alert.summary).replace("\n", "<br>")
    return (
        f"<html><body><h2>{html.escape(alert.title)}</h2><p>{summary}</p>"
        f"<table cellpadding='3'>{rows}</table><br>{table}</body></html>"
    )


class EmailSink:
    """Sends the alert as a plain-text + HTML email through an SMTP relay.

    Args:
        host: SMTP server.
        port: 587 for STARTTLS, 465 for implicit TLS, 25 for a local relay.
        sender: The ``From`` address.
        recipients: ``To`` addresses.
        security: ``starttls``, ``ssl`` (implicit TLS) or ``none``.
        username: Login, when the relay needs one (with ``password``).
        password: Password of ``username``.
        ca_file: CA bundle to verify the server with, for a private CA.
        timeout_seconds: Socket timeout of one attempt.
    """

    name = "email"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        recipients: list[str],
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        if security not in SMTP_SECURITY:
            raise ValueError(
                f"alerting.sinks.email.security must be one of {SMTP_SECURITY}, got {security!r}"
            )
        self._host, self._port = host, int(port)
        self._sender, self._recipients = sender, list(recipients)
        self._security = security
        self._username, self._password = username, password
        self._ca_file = ca_file
        self._timeout = float(timeout_seconds)

    def message(self, alert: Alert) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = alert.title
        message["From"] = self._sender
        message["To"] = ", ".join(self._recipients)
        message["X-Fraud-Detection-Event"] = alert.event
        message.set_content(alert.as_text())
        message.add_alternative(_html_body(alert), subtype="html")
        return message

    def send(self, alert: Alert) -> None:
        context = ssl.create_default_context(cafile=self._ca_file)
        if self._security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self._host, self._port, timeout=self._timeout, context=context
            )
        else:
            client = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        with client:
            if self._security == "starttls":
                client.starttls(context=context)
            if self._username:
                client.login(self._username, self._password or "")
            client.send_message(self.message(alert))

    def __repr__(self) -> str:
        return f"EmailSink(host={self._host!r}, port={self._port}, security={self._security!r})"


def is_transient(error: BaseException) -> bool:
    """Whether another attempt may succeed: refused connections, timeouts, HTTP 429 and
    5xx, SMTP 4xx. A wrong URL (HTTP 404), a refused login or an SMTP 5xx will not
    change on retry."""
    if isinstance(error, urllib.error.HTTPError):
        return error.code == 429 or error.code >= 500
    if isinstance(error, smtplib.SMTPAuthenticationError | smtplib.SMTPRecipientsRefused):
        return False
    if isinstance(error, smtplib.SMTPResponseException):
        return 400 <= error.smtp_code < 500
    return isinstance(error, OSError | smtplib.SMTPException)
