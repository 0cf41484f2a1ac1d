"""No password of a URL reaches a start-up problem, a log line, an alert or an alert link,
with a secret set for every place it could come from and every sink it could go to."""

from __future__ import annotations

import json
import logging

import pytest

from fraud_detection.alerting import events
from fraud_detection.alerting.alerter import Alerter
from fraud_detection.alerting.events import RunInfo
from fraud_detection.alerting.sinks import EmailSink, WebhookSink
from fraud_detection.mlflow_server import check_mlflow_server
from fraud_detection.redaction import redact
from fraud_detection.validation import StartupValidationError, validate_environment
from tests.alerting.conftest import body_text, free_port

SECRET = "s3cret-Pa55"
TRACKING = f"https://alice:{SECRET}@127.0.0.1:{free_port()}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"at {TRACKING}/api", f"at https://***@{TRACKING.split('@')[1]}/api"),
        ("postgresql://fd:pw@db:5432/mlflow", "postgresql://***@db:5432/mlflow"),
        ("https://token@hooks.example/T1", "https://***@hooks.example/T1"),
        ("https://host/p?mail=a@b.example", "https://host/p?mail=a@b.example"),
        ("ops@example.test", "ops@example.test"),
    ],
)
def test_redact_keeps_the_address_and_drops_the_user_information(text, expected):
    assert redact(text) == expected


def test_start_up_problems_name_the_server_without_its_password(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", TRACKING)
    problems = check_mlflow_server({"tracking_uri": TRACKING, "timeout_s": 1})
    assert problems and all(SECRET not in p and "https://***@127.0.0.1" in p for p in problems)
    bad_scheme = check_mlflow_server({"tracking_uri": f"ftp://alice:{SECRET}@host"})
    assert SECRET not in bad_scheme[0]
    # Whatever check writes a problem, the error that is printed and logged is clean.
    error = StartupValidationError("prod", [f"Service at {TRACKING} is down"])
    assert SECRET not in str(error) and all(SECRET not in p for p in error.problems)
    config = {"mlflow_server": {"tracking_uri": TRACKING, "timeout_s": 1}}
    found = validate_environment(config, None)
    assert found and all(SECRET not in p for p in found)


def test_the_alert_link_is_built_without_the_password():
    url = events.mlflow_run_url(None, TRACKING, "3", "abc123")
    assert url == f"https://***@{TRACKING.split('@')[1]}/#/experiments/3/runs/abc123"


def test_service_unreachable_alert_carries_no_password_to_any_sink(webhook, smtp, caplog):
    hook_url = f"{webhook.url}?token=hook-{SECRET}"  # the webhook's own secret
    sinks = {
        "webhook": WebhookSink(url=hook_url, timeout_seconds=5),
        "email": EmailSink(
            host=smtp.host,
            port=smtp.port,
            security="none",
            sender="fraud@example.test",
            recipients=["ops@example.test"],
        ),
    }
    alerter = Alerter(sinks, {events.SERVICE_UNREACHABLE: ["webhook", "email"]})
    problems = check_mlflow_server({"tracking_uri": TRACKING, "timeout_s": 1})
    run = RunInfo("prod", "run-1", "abc123", events.mlflow_run_url(None, TRACKING, "3", "abc123"))
    error = RuntimeError(f"MLflow at {TRACKING} refused the connection")
    alert = events.service_unreachable([*problems, f"raw: {TRACKING}"], run, error)

    with caplog.at_level(logging.INFO, logger="fraud_detection"):
        assert alerter.send(alert) == {"log": True, "webhook": True, "email": True}

    (post,) = webhook.events()
    (mail,) = smtp.messages
    html = next(part for part in mail.walk() if part.get_content_type() == "text/html")
    logged = [json.dumps(getattr(r, "alert", {})) + r.getMessage() for r in caplog.records]
    sent = {
        "webhook": json.dumps(post),
        "email text": body_text(mail),
        "email html": html.get_content(),
        "email subject": mail["Subject"],
        "log": "\n".join(logged),
    }
    for sink, text in sent.items():
        assert SECRET not in text, sink
        assert "https://***@127.0.0.1" in text or sink == "email subject", sink
    assert "hook-" not in "\n".join(logged)  # the webhook URL is never logged either
