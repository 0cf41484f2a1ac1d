"""Streams transactions to Kafka as JSON: ``fraud-detection-produce``.

Transactions come from the simulator (``params:simulation`` of a Kedro environment)
or from a parquet/CSV file mapped onto the schema with ``ingestion.column_mapping``.
They are sent in time order, keyed by customer id (one customer's transactions stay
in one partition, in order), with ``acks=all``, and without their label or fraud
scenario: as in production, each label arrives later and on its own, on the label topic
(``transaction_labels``), once the replay has passed the label's time, the transaction's
time plus a delay drawn from ``params:labels.delay`` (``conf/base/parameters_labels.yml``).
The command prints how many messages the cluster acknowledged and exits non-zero when
any was not::

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
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from kafka import KafkaProducer

from fraud_detection import schema
from fraud_detection.config import config_section, load_project_config
from fraud_detection.streaming.clients import (
    KafkaConnectionError,
    connect,
    servers_text,
)
from fraud_detection.streaming.labels import LabelParams, schedule_labels, strip_labels
from fraud_detection.streaming.publish import (
    PRODUCER_DEFAULTS,
    DeliveryReport,
    produce_frame,
    produce_with_labels,
)

logger = logging.getLogger(__name__)

DEFAULT_TOPIC = "transactions"
DEFAULT_LABELS_TOPIC = "transaction_labels"
DEFAULT_BOOTSTRAP_SERVERS = "127.0.0.1:9092"


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
        from fraud_detection.quality import standardise_columns

        if file.suffix.lower() == ".csv":
            raw = pd.read_csv(file)
        elif file.suffix.lower() in {".parquet", ".pq"}:
            raw = pd.read_parquet(file)
        else:
            raise ValueError(f"Cannot read {file}: expected a .parquet or .csv file")
        mapping = (
            column_mapping
            if column_mapping is not None
            else params.get("ingestion", {}).get("column_mapping") or {}
        )
        frame = standardise_columns(raw, {**params.get("ingestion", {}), "column_mapping": mapping})
    # Time order; values are sent as they are (CSV timestamps stay strings).
    frame = frame.sort_values(
        schema.TIMESTAMP,
        kind="stable",
        ignore_index=True,
        na_position="last",
        key=lambda ts: (
            ts
            if pd.api.types.is_datetime64_any_dtype(ts)
            else pd.to_datetime(ts, errors="coerce", format="mixed")
        ),
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
    parser.add_argument(
        "--file", type=Path, help="parquet or CSV table to send (default: the simulator)"
    )
    parser.add_argument(
        "--column-mapping",
        type=_parse_mapping,
        help="canonical=source pairs, comma-separated (default: ingestion.column_mapping of --env)",
    )
    parser.add_argument(
        "--topic", default=os.environ.get("KAFKA_TRANSACTIONS_TOPIC", DEFAULT_TOPIC)
    )
    parser.add_argument(
        "--labels-topic",
        default=os.environ.get("KAFKA_LABELS_TOPIC", DEFAULT_LABELS_TOPIC),
        help="where each label goes, after its delay; '' sends no labels (default: %(default)s)",
    )
    parser.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP_SERVERS),
        help="host:port[,host:port] (default: $KAFKA_BOOTSTRAP_SERVERS or %(default)s)",
    )
    parser.add_argument(
        "--rate", type=float, default=0.0, help="messages per second; 0 = as fast as possible"
    )
    parser.add_argument("--limit", type=int, help="send at most this many transactions")
    parser.add_argument(
        "--env",
        default="kafka",
        help=(
            "Kedro environment for parameters and the 'kafka' credentials entry "
            "(default: %(default)s)"
        ),
    )
    parser.add_argument(
        "--project-path", type=Path, default=Path.cwd(), help="Kedro project root (default: cwd)"
    )
    parser.add_argument("--days", type=int, help="simulator: number of days (simulation.n_days)")
    parser.add_argument(
        "--customers", type=int, help="simulator: number of customers (simulation.n_customers)"
    )
    parser.add_argument(
        "--terminals", type=int, help="simulator: number of terminals (simulation.n_terminals)"
    )
    parser.add_argument("--seed", type=int, help="simulator: random seed (simulation.seed)")
    parser.add_argument(
        "--progress-every", type=float, default=10.0, help="seconds between progress lines"
    )
    parser.add_argument(
        "--flush-timeout", type=float, default=120.0, help="seconds to wait for acknowledgements"
    )
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for the cluster to answer",
    )
    return parser


def _project_config(project_path: Path, env: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parameters and the ``kafka`` credentials entry of a Kedro environment."""
    loader = load_project_config(project_path, env)
    credentials = config_section(loader, "credentials")
    return config_section(loader, "parameters"), dict(credentials.get("kafka") or {})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fraud-detection-produce``; returns the process exit code."""
    args = _build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)  # connection chatter at INFO
    # Kedro's config loader uses an OmegaConf call deprecated upstream; not ours to fix.
    warnings.filterwarnings("ignore", message="register_new_resolver", category=UserWarning)
    params, credentials = _project_config(args.project_path, args.env)
    label_params = LabelParams.from_dict(params.get("labels") or {})
    overrides = {
        "n_days": args.days,
        "n_customers": args.customers,
        "n_terminals": args.terminals,
        "seed": args.seed,
    }
    params["simulation"] = {
        **params.get("simulation", {}),
        **{k: v for k, v in overrides.items() if v is not None},
    }
    try:  # connect first: an unreachable cluster fails before any work is done
        producer = connect(
            KafkaProducer,
            args.bootstrap_servers,
            credentials,
            client_id="fraud-detection-produce",
            bootstrap_timeout_ms=int(args.connect_timeout * 1000),
            **PRODUCER_DEFAULTS,
        )
    except KafkaConnectionError as exc:
        logger.error("%s", exc)
        return 2
    try:
        frame = load_transactions(args.file, params, args.column_mapping, args.limit)
        labels = _labels_to_send(frame, label_params, args.labels_topic)
        frame = strip_labels(frame)
        logger.info(
            "Sending %d transactions from %s to '%s' on %s%s",
            len(frame),
            args.file or "the simulator",
            args.topic,
            servers_text(args.bootstrap_servers),
            f" at {args.rate:g} msgs/s" if args.rate else "",
        )
        options = {
            "rate": args.rate,
            "flush_timeout_s": args.flush_timeout,
            "progress_every_s": args.progress_every,
        }
        if labels is None:
            reports: tuple[DeliveryReport, ...] = (
                produce_frame(producer, args.topic, frame, **options),
            )
        else:
            logger.info(
                "Sending %d labels to '%s', each once the replay passes its time (delay: %s)",
                len(labels),
                args.labels_topic,
                label_params.delay.model_dump(),
            )
            reports = produce_with_labels(
                producer, args.topic, frame, args.labels_topic, labels, **options
            )
    finally:
        producer.close(timeout=5)
    for report in reports:
        (logger.info if report.ok else logger.error)("%s", report.summary())
    return 0 if all(report.ok for report in reports) else 1


def _labels_to_send(
    frame: pd.DataFrame, params: LabelParams, labels_topic: str
) -> pd.DataFrame | None:
    """The label messages of ``frame`` with their times; ``None`` when none are sent."""
    if not labels_topic:
        logger.info("No label topic: labels are not sent")
        return None
    if schema.LABEL not in frame:
        logger.warning("The transactions have no '%s' column: no labels to send", schema.LABEL)
        return None
    return schedule_labels(frame, params.delay, params.seed)


if __name__ == "__main__":
    sys.exit(main())
