"""Streams transactions to Kafka as JSON: ``fraud-detection-produce``.

Transactions come from the simulator (``params:simulation`` of a Kedro environment)
or from a parquet/CSV file mapped onto the schema with ``ingestion.column_mapping``.
They are sent in time order, keyed by customer id (one customer's transactions stay
in one partition, in order), with ``acks=all``. The command prints how many messages
the cluster acknowledged and exits non-zero when any was not::

    fraud-detection-produce                          # simulator, as fast as possible
    fraud-detection-produce --rate 200 --days 7      # a week of traffic at 200 msgs/s
    fraud-detection-produce --file tx.parquet --column-mapping transaction_id=TX_ID,amount=TX_AMOUNT
    fraud-detection-produce --file "$HANDBOOK_TRANSACTIONS_PATH" --env handbook
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from kafka import KafkaProducer
from kafka.errors import KafkaError

from fraud_detection import schema
from fraud_detection.streaming.clients import (
    KafkaConnectionError,
    connect,
    servers_text,
)
from fraud_detection.streaming.messages import encode_transactions

logger = logging.getLogger(__name__)

DEFAULT_TOPIC = "transactions"
DEFAULT_BOOTSTRAP_SERVERS = "127.0.0.1:9092"
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
        raise ValueError(f"Key column '{key_column}' is not a column of the frame; it has {list(frame.columns)}")
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
        keys = [str(k).encode() for k in chunk[key_column].tolist()] if key_column else [None] * len(values)
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
            logger.error("Sending to '%s' failed after %d of %d messages: %r", topic, sent, total, exc)
            break
        now = time.monotonic()
        if now >= next_progress:
            logger.info(
                "Produced %d/%d messages to '%s' (%d acknowledged, %.0f msgs/s)",
                sent, total, topic, tally.acknowledged, sent / (now - started),
            )
            next_progress = now + progress_every_s
    try:
        producer.flush(timeout=flush_timeout_s)
    except KafkaError as exc:
        first_send_error = first_send_error or repr(exc)
        logger.error("Not every message to '%s' was acknowledged within %.0fs: %r", topic, flush_timeout_s, exc)
    return DeliveryReport(
        topic=topic,
        total=total,
        sent=sent,
        acknowledged=tally.acknowledged,
        failed=tally.failed,
        elapsed_s=time.monotonic() - started,
        first_error=tally.first_error or first_send_error,
    )


def load_transactions(
    file: Path | None,
    params: dict[str, Any],
    column_mapping: dict[str, str] | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Transactions to send, in time order: simulated, or read from a file and mapped.

    Args:
        file: A parquet or CSV table; ``None`` runs the simulator with ``params['simulation']``.
        params: Parameters of the Kedro environment (``simulation``, ``ingestion``).
        column_mapping: Canonical -> source column; defaults to ``ingestion.column_mapping``.
        limit: Keep only the first ``limit`` transactions in time order.
    """
    if file is None:
        from fraud_detection.simulator import simulate_transactions

        frame = simulate_transactions(params["simulation"])
    else:
        from fraud_detection.pipelines.ingestion.nodes import standardise_columns

        if file.suffix.lower() == ".csv":
            raw = pd.read_csv(file)
        elif file.suffix.lower() in {".parquet", ".pq"}:
            raw = pd.read_parquet(file)
        else:
            raise ValueError(f"Cannot read {file}: expected a .parquet or .csv file")
        mapping = column_mapping if column_mapping is not None else params.get("ingestion", {}).get("column_mapping") or {}
        frame = standardise_columns(raw, {"column_mapping": mapping})
    # Time order; values are sent as they are (CSV timestamps stay strings).
    frame = frame.sort_values(
        schema.TIMESTAMP, kind="stable", ignore_index=True, na_position="last",
        key=lambda ts: ts if pd.api.types.is_datetime64_any_dtype(ts) else pd.to_datetime(ts, errors="coerce", format="mixed"),
    )
    return frame.head(limit) if limit is not None else frame


def _parse_mapping(text: str) -> dict[str, str]:
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    if any(len(pair) != 2 for pair in pairs):  # noqa: PLR2004
        raise argparse.ArgumentTypeError("expected canonical=source pairs separated by commas")
    return {canonical.strip(): source.strip() for canonical, source in pairs}


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fraud-detection-produce",
        description="Stream transactions to Kafka as JSON (keyed by customer id, acks=all).",
    )
    parser.add_argument("--file", type=Path, help="parquet or CSV table to send (default: the simulator)")
    parser.add_argument(
        "--column-mapping", type=_parse_mapping,
        help="canonical=source pairs, comma-separated (default: ingestion.column_mapping of --env)",
    )
    parser.add_argument("--topic", default=os.environ.get("KAFKA_TRANSACTIONS_TOPIC", DEFAULT_TOPIC))
    parser.add_argument(
        "--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP_SERVERS),
        help="host:port[,host:port] (default: $KAFKA_BOOTSTRAP_SERVERS or %(default)s)",
    )
    parser.add_argument("--rate", type=float, default=0.0, help="messages per second; 0 = as fast as possible")
    parser.add_argument("--limit", type=int, help="send at most this many transactions")
    parser.add_argument(
        "--env", default="kafka",
        help="Kedro environment for parameters and the 'kafka' credentials entry (default: %(default)s)",
    )
    parser.add_argument("--project-path", type=Path, default=Path.cwd(), help="Kedro project root (default: cwd)")
    parser.add_argument("--days", type=int, help="simulator: number of days (simulation.n_days)")
    parser.add_argument("--customers", type=int, help="simulator: number of customers (simulation.n_customers)")
    parser.add_argument("--terminals", type=int, help="simulator: number of terminals (simulation.n_terminals)")
    parser.add_argument("--seed", type=int, help="simulator: random seed (simulation.seed)")
    parser.add_argument("--progress-every", type=float, default=10.0, help="seconds between progress lines")
    parser.add_argument("--flush-timeout", type=float, default=120.0, help="seconds to wait for acknowledgements")
    parser.add_argument("--connect-timeout", type=float, default=10.0, help="seconds to wait for the cluster to answer")
    return parser


def _project_config(project_path: Path, env: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parameters and the ``kafka`` credentials entry of a Kedro environment."""
    from dotenv import load_dotenv
    from kedro.config import OmegaConfigLoader

    from fraud_detection.settings import CONFIG_LOADER_ARGS

    env_file = project_path / ".env"
    if env_file.is_file():
        load_dotenv(env_file, override=False)
    loader = OmegaConfigLoader(conf_source=str(project_path / "conf"), env=env, **CONFIG_LOADER_ARGS)
    try:
        credentials = loader["credentials"]
    except KeyError:
        credentials = {}
    return dict(loader["parameters"]), dict(credentials.get("kafka") or {})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fraud-detection-produce``; returns the process exit code."""
    args = _build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)  # connection chatter at INFO
    # Kedro's config loader uses an OmegaConf call deprecated upstream; not ours to fix.
    warnings.filterwarnings("ignore", message="register_new_resolver", category=UserWarning)
    params, credentials = _project_config(args.project_path, args.env)
    overrides = {"n_days": args.days, "n_customers": args.customers, "n_terminals": args.terminals, "seed": args.seed}
    params["simulation"] = {**params.get("simulation", {}), **{k: v for k, v in overrides.items() if v is not None}}
    try:  # connect first: an unreachable cluster fails before any work is done
        producer = connect(
            KafkaProducer, args.bootstrap_servers, credentials,
            client_id="fraud-detection-produce", bootstrap_timeout_ms=int(args.connect_timeout * 1000),
            **PRODUCER_DEFAULTS,
        )
    except KafkaConnectionError as exc:
        logger.error("%s", exc)
        return 2
    try:
        frame = load_transactions(args.file, params, args.column_mapping, args.limit)
        logger.info(
            "Sending %d transactions from %s to '%s' on %s%s",
            len(frame), args.file or "the simulator", args.topic, servers_text(args.bootstrap_servers),
            f" at {args.rate:g} msgs/s" if args.rate else "",
        )
        report = produce_frame(
            producer, args.topic, frame, rate=args.rate,
            flush_timeout_s=args.flush_timeout, progress_every_s=args.progress_every,
        )
    finally:
        producer.close(timeout=5)
    (logger.info if report.ok else logger.error)("%s", report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
