"""A librdkafka (``confluent-kafka``) producer behind the part of kafka-python's
``KafkaProducer`` interface the real-time scorer uses: ``send`` returning a future,
``flush``, ``close``.

Why: at 1,000 tx/s on two cores, kafka-python's producer (its sender thread, one wake-up
per ``send``) took about a third of the scorer's CPU, and the scorer's latency tail is
CPU queueing (docs/benchmarks.md, "Real-time scorer"). librdkafka batches and sends from
C threads that do not hold the GIL. Consumers and batch ingestion stay on kafka-python.

Deliveries are reported by librdkafka's callbacks, which run inside ``poll``/``flush``:
``send`` and a future's ``is_done`` serve them, so a caller that only checks futures
sees them settle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import confluent_kafka

from fraud_detection.streaming.clients import (
    DEFAULT_BOOTSTRAP_TIMEOUT_MS,
    KafkaConnectionError,
    client_settings,
    servers_text,
)

# kafka-python setting -> librdkafka property (credentials.yml speaks kafka-python).
_SETTINGS = {
    "security_protocol": "security.protocol",
    "sasl_mechanism": "sasl.mechanism",
    "sasl_plain_username": "sasl.username",
    "sasl_plain_password": "sasl.password",
    "ssl_cafile": "ssl.ca.location",
    "ssl_certfile": "ssl.certificate.location",
    "ssl_keyfile": "ssl.key.location",
    "ssl_password": "ssl.key.password",
    "client_id": "client.id",
    "acks": "acks",
    "linger_ms": "linger.ms",
    "batch_size": "batch.size",
    "max_block_ms": None,  # librdkafka does not block in produce; it raises BufferError
    "bootstrap_timeout_ms": None,
}


def rdkafka_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """kafka-python producer settings as librdkafka properties.

    Raises:
        KafkaConnectionError: A setting has no librdkafka counterpart here (named).
    """
    unknown = sorted(set(settings) - set(_SETTINGS))
    if unknown:
        raise KafkaConnectionError(
            f"Kafka settings {unknown} have no librdkafka counterpart in "
            "fraud_detection.streaming.rdkafka: use --producer-client kafka-python, or add "
            "them to its table"
        )
    return {_SETTINGS[k]: v for k, v in settings.items() if _SETTINGS[k] is not None}


class Delivery:
    """The future of one sent message (``is_done``, ``failed()``, ``exception``)."""

    __slots__ = ("_done", "_producer", "exception")

    def __init__(self, producer: confluent_kafka.Producer):
        self._producer = producer
        self._done = False
        self.exception: Exception | None = None

    def __call__(self, error: Any, _message: Any) -> None:  # librdkafka's callback
        if error is not None:
            self.exception = confluent_kafka.KafkaException(error)
        self._done = True

    @property
    def is_done(self) -> bool:
        if not self._done:
            self._producer.poll(0)  # serves the callbacks that are ready
        return self._done

    def failed(self) -> bool:
        return self.exception is not None


class RdKafkaProducer:
    """``send(topic, value, key, headers)`` -> :class:`Delivery`; ``flush``; ``close``."""

    def __init__(self, bootstrap_servers: str | list[str], **settings: Any):
        timeout_s = settings.get("bootstrap_timeout_ms", DEFAULT_BOOTSTRAP_TIMEOUT_MS) / 1000
        self._servers = servers_text(bootstrap_servers)
        self._producer = confluent_kafka.Producer(
            {
                "bootstrap.servers": self._servers,
                "enable.idempotence": False,
                "socket.nagle.disable": True,  # a lone prediction must not wait for an ACK
                **rdkafka_settings(settings),
            }
        )
        try:
            self._producer.list_topics(timeout=timeout_s)
        except confluent_kafka.KafkaException as exc:
            raise KafkaConnectionError(
                f"No Kafka broker answered at {self._servers} within {timeout_s:g}s ({exc}). "
                "Start the local broker with `scripts/kafka.sh start`, or set "
                "KAFKA_BOOTSTRAP_SERVERS (and the security settings in credentials.yml) "
                "to a reachable cluster."
            ) from exc

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Delivery:
        delivery = Delivery(self._producer)
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=delivery
                )
                break
            except BufferError:  # the local queue is full: wait for deliveries
                self._producer.poll(0.05)
        self._producer.poll(0)
        return delivery

    def flush(self, timeout: float | None = None) -> None:
        left = self._producer.flush(-1 if timeout is None else timeout)
        if left:
            raise confluent_kafka.KafkaException(
                f"{left} message(s) not delivered to {self._servers} within {timeout} s"
            )

    def close(self, timeout: float | None = None) -> None:
        self._producer.flush(-1 if timeout is None else timeout)


def connect_rdkafka_producer(
    bootstrap_servers: str | list[str], credentials: Mapping[str, Any] | None, **config: Any
) -> RdKafkaProducer:
    """:func:`fraud_detection.streaming.clients.connect` for :class:`RdKafkaProducer`."""
    return RdKafkaProducer(bootstrap_servers, **client_settings(credentials), **config)
