"""Sending a transaction frame to a Kafka topic: the client side of the producer CLI,
shared with ``KafkaDataset.save`` and the benchmarks."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from kafka import KafkaProducer
from kafka.errors import KafkaError

from fraud_detection import schema
from fraud_detection.streaming.messages import encode_transactions

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
    if key_column is not None and key_column not in frame.columns:
        raise ValueError(
            f"Key column '{key_column}' is not a column of the frame; it has {list(frame.columns)}"
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
            logger.info(
                "Produced %d/%d messages to '%s' (%d acknowledged, %.0f msgs/s)",
                sent,
                total,
                topic,
                tally.acknowledged,
                sent / (now - started),
            )
            next_progress = now + progress_every_s
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
    return DeliveryReport(
        topic=topic,
        total=total,
        sent=sent,
        acknowledged=tally.acknowledged,
        failed=tally.failed,
        elapsed_s=time.monotonic() - started,
        first_error=tally.first_error or first_send_error,
    )
