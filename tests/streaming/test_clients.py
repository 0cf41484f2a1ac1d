"""Connections fail in bounded time and name the servers; the start-up check says so."""

from __future__ import annotations

import socket
import time

import pytest
from kafka import KafkaConsumer

from fraud_detection.streaming.clients import (
    KafkaConnectionError,
    check_kafka,
    client_settings,
    connect,
)
from fraud_detection.validation import validate_environment


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_servers_fail_within_the_bootstrap_timeout():
    servers = f"127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    with pytest.raises(
        KafkaConnectionError,
        match=f"No Kafka broker answered at {servers} within 1s.*scripts/kafka.sh start",
    ):
        connect(KafkaConsumer, servers, bootstrap_timeout_ms=1000)
    assert time.monotonic() - started < 5


def test_invalid_settings_are_named():
    with pytest.raises(KafkaConnectionError, match="Invalid Kafka client settings for 127.0.0.1:1"):
        connect(KafkaConsumer, "127.0.0.1:1", {"sasl_mechanizm": "PLAIN"})


def test_unset_credentials_fall_back_to_the_client_defaults():
    assert client_settings({"security_protocol": "PLAINTEXT", "sasl_mechanism": None}) == {
        "security_protocol": "PLAINTEXT"
    }
    assert client_settings(None) == {}


def test_startup_check_reports_unreachable_servers(tmp_path):
    servers = f"127.0.0.1:{_closed_port()}"
    problems = validate_environment(
        {"kafka": {"bootstrap_servers": servers, "timeout_s": 1}}, tmp_path
    )
    assert len(problems) == 1 and f"No Kafka broker answered at {servers}" in problems[0]


def test_startup_check_refuses_bad_sections():
    assert "Unknown key(s) ['bootstrap']" in check_kafka({"bootstrap": "x"})[0]
    assert "bootstrap_servers is empty" in check_kafka({"bootstrap_servers": ""})[0]
    assert (
        "not an entry of credentials.yml"
        in check_kafka({"bootstrap_servers": "h:1", "credentials": "kafka"})[0]
    )


def test_kafka_python_settings_map_to_librdkafka_properties():
    from fraud_detection.streaming.rdkafka import rdkafka_settings  # noqa: PLC0415

    settings = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "scorer",
        "sasl_plain_password": "s3cret",
        "ssl_cafile": "/etc/ca.pem",
        "linger_ms": 2,
        "max_block_ms": 5000,
    }
    assert rdkafka_settings(settings) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "scorer",
        "sasl.password": "s3cret",
        "ssl.ca.location": "/etc/ca.pem",
        "linger.ms": 2,
    }


def test_a_setting_librdkafka_lacks_fails_naming_it_and_the_way_out():
    from fraud_detection.streaming.rdkafka import rdkafka_settings  # noqa: PLC0415

    expected = r"\['sasl_kerberos_service_name'\].*kafka-python"
    with pytest.raises(KafkaConnectionError, match=expected):
        rdkafka_settings({"sasl_kerberos_service_name": "kafka", "acks": "all"})


def test_no_broker_fails_fast_with_what_to_do():
    from fraud_detection.streaming.rdkafka import RdKafkaProducer  # noqa: PLC0415

    with pytest.raises(KafkaConnectionError, match="scripts/kafka.sh start"):
        RdKafkaProducer("127.0.0.1:1", bootstrap_timeout_ms=1500)
