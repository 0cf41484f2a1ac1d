"""Sinks and the alerter against real local receivers: what each event type says in
a Slack/Teams webhook post and in an email, and that a sink that is down is retried a
bounded number of times, logged, and never raises."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import ssl
import time

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from fraud_detection.alerting import Alerter, RetryPolicy, RunInfo, build_alerter
from fraud_detection.alerting import events as ev
from fraud_detection.alerting.sinks import EmailSink, WebhookSink
from fraud_detection.errors import DataQualityError
from fraud_detection.validation import StartupValidationError
from tests.alerting.conftest import _MailboxHandler, body_text, free_port

RUN = RunInfo(
    environment="prod",
    run_id="2026-11-28T10.00.00.000Z",
    mlflow_run_id="abc123",
    mlflow_run_url="http://mlflow.example.test/#/experiments/1/runs/abc123",
)
FAST = RetryPolicy(
    attempts=3, initial_wait_seconds=0.01, max_wait_seconds=0.05, max_total_seconds=5
)

DQ_REPORT = {
    "rows_in": 1000,
    "rows_valid": 880,
    "rows_quarantined": 120,
    "invalid_share": 0.12,
    "max_invalid_share": 0.05,
    "quarantined_by_reason": {"missing_customer_id": 100, "amount_out_of_range": 20},
}
DECISION = {
    "promote": True,
    "reason": "challenger average_precision 0.6100 beats champion 0.5800 by +0.0300 (margin 0.005)",
    "challenger": {"metrics": {"average_precision": 0.61, "roc_auc": 0.91}, "run_id": "abc123"},
    "champion": {
        "version": "3",
        "run_id": "old999",
        "metrics": {"average_precision": 0.58, "roc_auc": 0.90},
    },
    "challenger_run_id": "abc123",
    "test_rows": 19499,
}
VERDICT = {
    "drift_detected": True,
    "window": {"start": "2026-11-20", "end": "2026-11-27", "rows": 5400},
    "features": {
        "amount": {"psi": 0.41, "ks_pvalue": 0.0001, "drifted": True},
        "hour": {"psi": 0.02, "ks_pvalue": 0.6, "drifted": False},
        "customer_tx_count_1D": {"psi": 0.27, "ks_pvalue": 0.002, "drifted": True},
    },
    "score": {"psi": 0.3, "drifted": True},
    "performance": {"average_precision": {"current": 0.41, "reference": 0.6}},
}


def one_of_each() -> dict[str, ev.Alert]:
    return {
        ev.PIPELINE_FAILED: ev.pipeline_failed(
            KeyError("customer_id"), "create_features_node", RUN
        ),
        ev.DATA_QUALITY_FAILED: ev.alert_for_error(
            DataQualityError("120 of 1000 transactions failed", report=DQ_REPORT),
            "validate_transactions_node",
            RUN,
        ),
        ev.DRIFT_DETECTED: ev.drift_detected(VERDICT, RUN),
        ev.MODEL_PROMOTED: ev.promotion_decided(DECISION, RUN),
        ev.CHALLENGER_REJECTED: ev.promotion_decided(
            {**DECISION, "promote": False, "reason": "does not beat champion"}, RUN
        ),
        ev.SERVICE_UNREACHABLE: ev.alert_for_error(
            StartupValidationError("prod", ["Kafka at kafka:9092 did not answer within 5 s."]),
            None,
            RUN,
        ),
    }


# What each event must tell its reader, whatever the sink.
EXPECTED = {
    ev.PIPELINE_FAILED: [
        "Pipeline run failed in node create_features_node",
        "KeyError",
        "create_features_node",
    ],
    ev.DATA_QUALITY_FAILED: [
        "Data-quality limit exceeded",
        "missing_customer_id",
        "100",
        "amount_out_of_range",
        "12.00%",
        "5.00%",
        "validate_transactions_node",
    ],
    ev.DRIFT_DETECTED: [
        "Drift detected: 2 feature(s) and the score distribution",
        "amount",
        "customer_tx_count_1D",
        "0.4100",
        "0.4100 now vs 0.6000 at training",
    ],
    ev.MODEL_PROMOTED: ["New champion", "0.6100", "0.5800", "+0.0300", "beats champion"],
    ev.CHALLENGER_REJECTED: ["Challenger rejected", "0.6100", "0.5800", "does not beat champion"],
    ev.SERVICE_UNREACHABLE: [
        "Start-up checks failed: 1 problem(s)",
        "Kafka at kafka:9092 did not answer",
    ],
}
IDENTITY = [
    "prod",
    "2026-11-28T10.00.00.000Z",
    "abc123",
    "http://mlflow.example.test/#/experiments/1/runs/abc123",
]


def test_slack_webhook_receives_every_event_type_with_its_content(webhook):
    alerter = Alerter(
        {"webhook": WebhookSink(url=webhook.url, format="slack")},
        {e: ["webhook"] for e in ev.EVENT_TYPES},
        FAST,
    )
    alerts = one_of_each()
    for alert in alerts.values():
        assert alerter.send(alert) == {"log": True, "webhook": True}
    assert len(webhook.posts) == len(alerts)
    assert {p["content_type"] for p in webhook.posts} == {"application/json"}
    for (event, alert), post in zip(alerts.items(), webhook.events(), strict=True):
        # Slack's incoming webhooks need `text`; blocks carry the details.
        assert post["text"] == alert.title
        assert post["blocks"][0]["type"] == "header"
        rendered = str(post)
        for fragment in EXPECTED[event] + IDENTITY:
            assert fragment in rendered, (event, fragment)


def test_teams_webhook_gets_an_adaptive_card_with_facts_and_a_link_to_the_run(webhook):
    alerter = Alerter(
        {"webhook": WebhookSink(url=webhook.url, format="teams")},
        {ev.MODEL_PROMOTED: ["webhook"]},
        FAST,
    )
    alerter.send(one_of_each()[ev.MODEL_PROMOTED])
    (post,) = webhook.events()
    assert post["type"] == "message"
    card = post["attachments"][0]["content"]
    assert post["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    facts = {
        f["title"]: f["value"]
        for f in next(b for b in card["body"] if b["type"] == "FactSet")["facts"]
    }
    assert (
        facts["decision"] == "promoted"
        and facts["environment"] == "prod"
        and facts["MLflow run id"] == "abc123"
    )
    assert card["actions"][0]["url"] == RUN.mlflow_run_url
    assert "average_precision  0.6100      0.5800    +0.0300" in card["body"][-1]["text"]


def test_email_receives_every_event_type_as_text_and_html(smtp):
    sink = EmailSink(
        host=smtp.host,
        port=smtp.port,
        sender="fraud@example.test",
        recipients=["ops@example.test", "ml@example.test"],
        security="none",
    )
    alerter = Alerter({"email": sink}, {e: ["email"] for e in ev.EVENT_TYPES}, FAST)
    alerts = one_of_each()
    for alert in alerts.values():
        assert alerter.send(alert)["email"] is True
    assert len(smtp.messages) == len(alerts)
    assert smtp.handler.envelopes[0] == (
        "fraud@example.test",
        ["ops@example.test", "ml@example.test"],
    )
    for (event, alert), message in zip(alerts.items(), smtp.messages, strict=True):
        assert message["Subject"] == alert.title
        assert message["X-Fraud-Detection-Event"] == event
        text = body_text(message)
        html = message.get_body(preferencelist=("html",)).get_content()
        for fragment in EXPECTED[event] + IDENTITY:
            assert fragment in text, (event, fragment)
            assert fragment.replace("&", "&amp;") in html or fragment in html, (event, fragment)


def test_promotion_email_shows_challenger_and_champion_side_by_side(smtp):
    sink = EmailSink(
        host=smtp.host,
        port=smtp.port,
        sender="f@example.test",
        recipients=["o@example.test"],
        security="none",
    )
    Alerter({"email": sink}, {ev.MODEL_PROMOTED: ["email"]}, FAST).send(
        one_of_each()[ev.MODEL_PROMOTED]
    )
    text = body_text(smtp.messages[0])
    assert "metric             challenger  champion  gain" in text
    assert "average_precision  0.6100      0.5800    +0.0300" in text
    assert "roc_auc            0.9100      0.9000    +0.0100" in text


def _self_signed_certificate(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_email_over_starttls_logs_in_with_the_configured_credentials(tmp_path):
    cert_file, key_file = _self_signed_certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.login == b"alerts" and auth_data.password == b"s3cret")

    handler = _MailboxHandler()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    try:
        config = {
            "sinks": {
                "email": {
                    "host": "127.0.0.1",
                    "port": controller.port,
                    "security": "starttls",
                    "ca_file": str(cert_file),
                    "sender": "f@example.test",
                    "recipients": "o@example.test",
                    "credentials": "alerting_smtp",
                }
            },
            "events": {"pipeline_failed": ["email"]},
        }
        alerter = build_alerter(
            config, {"alerting_smtp": {"username": "alerts", "password": "s3cret"}}
        )
        assert alerter.send(one_of_each()[ev.PIPELINE_FAILED]) == {"log": True, "email": True}
    finally:
        controller.stop()
    assert logins == [(b"alerts", b"s3cret")]
    assert "create_features_node" in body_text(handler.messages[0])


def test_dead_webhook_and_refused_smtp_are_retried_then_logged_without_raising(caplog):
    dead_http, dead_smtp = free_port(), free_port()
    alerter = Alerter(
        {
            "webhook": WebhookSink(url=f"http://127.0.0.1:{dead_http}/hook", timeout_seconds=1),
            "email": EmailSink(
                host="127.0.0.1",
                port=dead_smtp,
                sender="f@example.test",
                recipients=["o@example.test"],
                security="none",
                timeout_seconds=1,
            ),
        },
        {ev.PIPELINE_FAILED: ["webhook", "email"]},
        FAST,
    )
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="fraud_detection"):
        results = alerter.send(one_of_each()[ev.PIPELINE_FAILED])
    assert results == {"log": True, "webhook": False, "email": False}
    assert time.monotonic() - started < 5
    failures = [r.getMessage() for r in caplog.records if "could not send" in r.getMessage()]
    assert any(
        "webhook could not send the pipeline_failed alert after 3 attempt(s)" in m for m in failures
    )
    assert any(
        "email could not send the pipeline_failed alert after 3 attempt(s)" in m for m in failures
    )
    # The webhook URL is a secret: never logged.
    assert str(dead_http) not in caplog.text


def test_transient_webhook_errors_are_retried_and_permanent_ones_are_not(webhook):
    alerter = Alerter(
        {"webhook": WebhookSink(url=webhook.url)}, {ev.PIPELINE_FAILED: ["webhook"]}, FAST
    )
    webhook.statuses[:] = [503, 500]
    assert alerter.send(one_of_each()[ev.PIPELINE_FAILED])["webhook"] is True
    assert len(webhook.posts) == 3
    webhook.posts.clear()
    webhook.statuses[:] = [404]
    assert alerter.send(one_of_each()[ev.PIPELINE_FAILED])["webhook"] is False
    assert len(webhook.posts) == 1


def test_retries_stop_at_the_total_time_budget():
    slow = RetryPolicy(
        attempts=50, initial_wait_seconds=0.2, max_wait_seconds=0.2, max_total_seconds=0.5
    )
    alerter = Alerter(
        {"webhook": WebhookSink(url=f"http://127.0.0.1:{free_port()}/")},
        {ev.PIPELINE_FAILED: ["webhook"]},
        slow,
    )
    started = time.monotonic()
    assert alerter.send(one_of_each()[ev.PIPELINE_FAILED])["webhook"] is False
    assert time.monotonic() - started < 2


def test_events_route_only_to_their_configured_sinks(webhook, smtp):
    config = {
        "sinks": {
            "webhook": {"url": webhook.url},
            "email": {
                "host": smtp.host,
                "port": smtp.port,
                "security": "none",
                "sender": "f@example.test",
                "recipients": ["o@example.test"],
            },
        },
        "events": {
            "model_promoted": ["webhook", "email"],
            "challenger_rejected": ["webhook"],
            "drift_detected": [],
        },
        "retry": {"attempts": 1},
    }
    alerter = build_alerter(config)
    alerts = one_of_each()
    assert alerter.send(alerts[ev.MODEL_PROMOTED]) == {"log": True, "webhook": True, "email": True}
    assert alerter.send(alerts[ev.CHALLENGER_REJECTED]) == {"log": True, "webhook": True}
    assert alerter.send(alerts[ev.DRIFT_DETECTED]) == {"log": True}
    assert len(webhook.posts) == 2 and len(smtp.messages) == 1


def test_unset_sinks_leave_alerts_in_the_log_only(caplog):
    config = {
        "sinks": {"webhook": {"credentials": "alerting_webhook"}, "email": {"host": None}},
        "events": {"pipeline_failed": ["webhook", "email"]},
    }
    alerter = build_alerter(config, {"alerting_webhook": {"url": None}})
    with caplog.at_level(logging.INFO, logger="fraud_detection.alerts"):
        assert alerter.send(one_of_each()[ev.PIPELINE_FAILED]) == {"log": True}
    (record,) = [r for r in caplog.records if r.name == "fraud_detection.alerts"]
    assert record.levelno == logging.ERROR and record.alert_event == "pipeline_failed"
    assert (
        record.alert["run"]["mlflow_run_id"] == "abc123"
        and record.alert["facts"]["node"] == "create_features_node"
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"sink": {}}, r"Unknown key\(s\) in alerting: \['sink'\]"),
        (
            {"events": {"model_promotd": ["webhook"]}},
            r"Unknown key\(s\) in alerting.events: \['model_promotd'\]",
        ),
        (
            {"events": {"model_promoted": ["slack"]}},
            r"alerting.events.model_promoted names unknown sink\(s\) \['slack'\]",
        ),
        (
            {"sinks": {"email": {"host": "smtp.example.test"}}},
            "has a host but no sender and no recipients",
        ),
        ({"sinks": {"webhook": {"url": "http://x", "format": "discord"}}}, "format must be one of"),
        (
            {"sinks": {"webhook": {"credentials": "nope"}}},
            "names 'nope', which is not an entry of credentials.yml",
        ),
        ({"retry": {"attempts": 0}}, "attempts must be at least 1"),
    ],
)
def test_configuration_mistakes_fail_with_the_key_name(config, message):
    with pytest.raises(ValueError, match=message):
        build_alerter(config, {})
