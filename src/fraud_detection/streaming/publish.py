"""Sending a transaction frame to a Kafka topic: the client side of the producer CLI,
shared with ``KafkaDataset.save`` and the benchmarks; and sending transactions with
their labels interleaved by time, the labels to their own topic."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from kafka import KafkaProducer
from kafka.errors import KafkaError

from fraud_detection import schema
from fraud_detection.streaming.labels import send_positions
from fraud_detection.streaming.messages import encode_labels, encode_transactions

logger = logging.getLogger(__name__)

# Throughput settings measured on the local broker (docs/benchmarks.md): batches of
# up to 256 KiB, waiting at most 10 ms to fill them. acks=all with idempotence keeps
# each customer's transactions in order across retries.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "linger_ms": 10,
    "batch_size": 262_144,
    "compression_type": None,
    "max_block_ms": 30_000,
}


@dataclass(frozen=True)
class DeliveryReport:
    """What happened to a batch of messages sent to a topic."""

    topic: str
    total: int
    sent: int
    acknowledged: int
    failed: int
    elapsed_s: float
    first_error: str | None = None

    @property
    def unacknowledged(self) -> int:
        """Messages not confirmed by the cluster: failed, timed out or never sent."""
        return self.total - self.acknowledged

    @property
    def ok(self) -> bool:
        return self.unacknowledged == 0

    @property
    def rate(self) -> float:
        return self.acknowledged / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> str:
        text = (
            f"{self.acknowledged} of {self.total} messages acknowledged by topic '{self.topic}' "
            f"in {self.elapsed_s:.1f}s ({self.rate:,.0f} msgs/s)"
        )
        if not self.ok:
            text += f"; {self.unacknowledged} NOT acknowledged (first error: {self.first_error})"
        return text


class _Tally:
    """Counts delivery callbacks, which kafka-python runs on its sender thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.acknowledged = 0
        self.failed = 0
        self.first_error: str | None = None

    def success(self, _metadata: Any) -> None:
        with self._lock:
            self.acknowledged += 1

    def failure(self, exc: BaseException) -> None:
        with self._lock:
            self.failed += 1
            if self.first_error is None:
                self.first_error = repr(exc)


def produce_frame(
    producer: KafkaProducer,
    topic: str,
    frame: pd.DataFrame,
    *,
    key_column: str | None = schema.CUSTOMER_ID,
    rate: float | None = None,
    flush_timeout_s: float = 120.0,
    progress_every_s: float = 10.0,
    chunk_rows: int = 20_000,
) -> DeliveryReport:
    """Sends every row of ``frame`` as a JSON message and waits for the acknowledgements.

    Args:
        producer: A connected producer (``acks`` decides what "acknowledged" means).
        topic: Destination topic.
        frame: Rows to send, in the order they should arrive.
        key_column: Column whose value is the message key; ``None`` for no key.
        rate: Messages per second; ``None`` or 0 sends as fast as possible.
        flush_timeout_s: How long to wait for outstanding acknowledgements at the end.
        progress_every_s: Interval of the progress log lines.
        chunk_rows: Rows encoded at a time (bounds memory).

    Returns:
        The counts; ``report.ok`` is true only when every message was acknowledged.
    """
    reports = _produce(
        producer,
        topic,
        frame,
        key_column=key_column,
        rate=rate,
        flush_timeout_s=flush_timeout_s,
        progress_every_s=progress_every_s,
        chunk_rows=chunk_rows,
    )
    return reports[0]


def produce_with_labels(  # noqa: PLR0913
    producer: KafkaProducer,
    topic: str,
    frame: pd.DataFrame,
    labels_topic: str,
    labels: pd.DataFrame,
    *,
    key_column: str | None = schema.CUSTOMER_ID,
    rate: float | None = None,
    flush_timeout_s: float = 120.0,
    progress_every_s: float = 10.0,
    chunk_rows: int = 20_000,
) -> tuple[DeliveryReport, DeliveryReport]:
    """Sends the transactions to ``topic`` and each label to ``labels_topic`` once the
    replay has passed the label's time (``labels.send_positions``).

    ``rate`` paces the transactions; a label goes out between the transactions around
    its time, so at any replay speed it arrives as late, in event time, as it was drawn.
    Labels due after the last transaction are sent at the end, in time order.

    Args:
        producer: A connected producer.
        topic: Topic of the transactions (sent without label).
        frame: The transactions, in time order.
        labels_topic: Topic of the labels.
        labels: Label rows (``schema.LABEL_COLUMNS``) sorted by ``label_timestamp``.
        key_column: Key of both messages (the customer id: a label stays in its
            transaction's partition).
        rate, flush_timeout_s, progress_every_s, chunk_rows: As for :func:`produce_frame`.

    Returns:
        The delivery reports of the transactions and of the labels.
    """
    if key_column is not None and key_column not in labels.columns:
        raise ValueError(f"Key column '{key_column}' is not a column of the labels")
    positions = send_positions(frame[schema.TIMESTAMP], labels[schema.LABEL_TIMESTAMP])
    tx_report, label_report = _produce(
        producer,
        topic,
        frame,
        key_column=key_column,
        rate=rate,
        flush_timeout_s=flush_timeout_s,
        progress_every_s=progress_every_s,
        chunk_rows=chunk_rows,
        labels=(labels_topic, labels, positions),
    )
    assert label_report is not None  # noqa: S101 - labels were given
    return tx_report, label_report


class _LabelSender:
    """Sends the labels due before a given transaction, encoding them chunk by chunk."""

    def __init__(  # noqa: PLR0917
        self,
        producer: KafkaProducer,
        topic: str,
        labels: pd.DataFrame,
        positions: np.ndarray,
        key_column: str | None,
        chunk_rows: int,
    ) -> None:
        self.producer, self.topic, self.labels = producer, topic, labels
        self.positions = positions
        self.key_column, self.chunk_rows = key_column, chunk_rows
        self.tally = _Tally()
        self.sent = 0
        self._values: list[bytes] = []
        self._keys: list[bytes | None] = []
        self._chunk_start = 0

    def send_due(self, before: int) -> None:
        """Sends every label whose position is at most ``before`` transactions."""
        while self.sent < len(self.positions) and self.positions[self.sent] <= before:
            offset = self.sent - self._chunk_start
            if offset >= len(self._values):
                self._load(self.sent)
                offset = 0
            future = self.producer.send(
                self.topic, value=self._values[offset], key=self._keys[offset]
            )
            future.add_callback(self.tally.success)
            future.add_errback(self.tally.failure)
            self.sent += 1

    def _load(self, start: int) -> None:
        chunk = self.labels.iloc[start : start + self.chunk_rows]
        self._values = encode_labels(chunk)
        self._keys = (
            [str(k).encode() for k in chunk[self.key_column].tolist()]
            if self.key_column
            else [None] * len(chunk)
        )
        self._chunk_start = start


def _produce(  # noqa: PLR0913, PLR0915
    producer: KafkaProducer,
    topic: str,
    frame: pd.DataFrame,
    *,
    key_column: str | None,
    rate: float | None,
    flush_timeout_s: float,
    progress_every_s: float,
    chunk_rows: int,
    labels: tuple[str, pd.DataFrame, np.ndarray] | None = None,
) -> tuple[DeliveryReport, DeliveryReport | None]:
    if key_column is not None and key_column not in frame.columns:
        raise ValueError(
            f"Key column '{key_column}' is not a column of the frame; it has {list(frame.columns)}"
        )
    label_sender = (
        _LabelSender(producer, labels[0], labels[1], labels[2], key_column, chunk_rows)
        if labels is not None
        else None
    )
    tally = _Tally()
    total = len(frame)
    sent = 0
    first_send_error: str | None = None
    started = time.monotonic()
    next_progress = started + progress_every_s
    interval = 1.0 / rate if rate else 0.0
    for start in range(0, total, chunk_rows):
        chunk = frame.iloc[start : start + chunk_rows]
        values = encode_transactions(chunk)
        keys = (
            [str(k).encode() for k in chunk[key_column].tolist()]
            if key_column
            else [None] * len(values)
        )
        try:
            for value, key in zip(values, keys, strict=True):
                if label_sender is not None:
                    label_sender.send_due(sent)
                if interval:
                    delay = started + sent * interval - time.monotonic()
                    if delay > 0.001:
                        time.sleep(delay)
                future = producer.send(topic, value=value, key=key)
                future.add_callback(tally.success)
                future.add_errback(tally.failure)
                sent += 1
        except KafkaError as exc:
            # Buffer full or no metadata for max_block_ms: the cluster is gone; stop
            # rather than wait that long again for every remaining message.
            first_send_error = repr(exc)
            logger.error(
                "Sending to '%s' failed after %d of %d messages: %r", topic, sent, total, exc
            )
            break
        now = time.monotonic()
        if now >= next_progress:
            if label_sender is not None:
                logger.info(
                    "Produced %d labels to '%s' so far", label_sender.sent, label_sender.topic
                )
            logger.info(
                "Produced %d/%d messages to '%s' (%d acknowledged, %.0f msgs/s)",
                sent,
                total,
                topic,
                tally.acknowledged,
                sent / (now - started),
            )
            next_progress = now + progress_every_s
    if label_sender is not None and first_send_error is None:
        try:  # the labels due after the last transaction
            label_sender.send_due(len(label_sender.positions) + total)
        except KafkaError as exc:
            first_send_error = repr(exc)
            logger.error("Sending labels to '%s' failed: %r", label_sender.topic, exc)
    try:
        producer.flush(timeout=flush_timeout_s)
    except KafkaError as exc:
        first_send_error = first_send_error or repr(exc)
        logger.error(
            "Not every message to '%s' was acknowledged within %.0fs: %r",
            topic,
            flush_timeout_s,
            exc,
        )
    elapsed = time.monotonic() - started
    report = DeliveryReport(
        topic=topic,
        total=total,
        sent=sent,
        acknowledged=tally.acknowledged,
        failed=tally.failed,
        elapsed_s=elapsed,
        first_error=tally.first_error or first_send_error,
    )
    if label_sender is None:
        return report, None
    return report, DeliveryReport(
        topic=label_sender.topic,
        total=len(label_sender.positions),
        sent=label_sender.sent,
        acknowledged=label_sender.tally.acknowledged,
        failed=label_sender.tally.failed,
        elapsed_s=elapsed,
        first_error=label_sender.tally.first_error or first_send_error,
    )
