"""``fraud-detection-score``: the real-time scorer as a long-running command.

    fraud-detection-score                                  # champion, topics from the environment
    fraud-detection-score --start-from latest              # first start: history into state,
                                                           # score only new messages
    fraud-detection-score --features-topic fraud_features  # also publish every scored feature row

Feature parameters come from ``params:features`` and the Kafka security settings from
the ``kafka`` entry of ``credentials.yml`` of the Kedro environment ``--env``; the model
registry from ``MLFLOW_TRACKING_URI`` (default: the project's ``mlflow.yml``).
SIGTERM or Ctrl-C stops it cleanly (exit 0). See docs/scoring.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from fraud_detection.config import EXTRA_PATTERNS, config_section, load_project_config
from fraud_detection.features.spec import build_spec
from fraud_detection.scoring.champion import ChampionWatcher, ModelUnavailableError
from fraud_detection.scoring.features import OnlineFeatures
from fraud_detection.scoring.online_store import OnlineStoreError, RedisWindows
from fraud_detection.scoring.service import (
    PRODUCER_CLIENTS,
    REASON_CODES,
    START_FROM,
    RealTimeScorer,
    ScorerConfig,
    ScorerError,
)
from fraud_detection.scoring.shadow import ShadowProcess
from fraud_detection.streaming.clients import KafkaConnectionError
from fraud_detection.streaming.labels import LabelParams
from fraud_detection.streaming.messages import MessageBounds

logger = logging.getLogger(__name__)


def _env(name: str, default: str | None) -> str | None:
    value = os.environ.get(name)
    return value if value else default


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fraud-detection-score",
        description="Score transactions from Kafka with the champion model, at least once.",
    )
    transactions = _env("KAFKA_TRANSACTIONS_TOPIC", "transactions")
    parser.add_argument(
        "--bootstrap-servers", default=_env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument("--transactions-topic", default=transactions)
    parser.add_argument(
        "--labels-topic",
        default=_env("KAFKA_LABELS_TOPIC", "transaction_labels"),
        help=(
            "late labels, joined to their transactions by id; the only source of labels, "
            "'' for none (default: %(default)s)"
        ),
    )
    parser.add_argument(
        "--predictions-topic", default=_env("KAFKA_PREDICTIONS_TOPIC", "fraud_predictions")
    )
    parser.add_argument(
        "--dead-letter-topic", default=_env("KAFKA_DEAD_LETTER_TOPIC", f"{transactions}.dlq")
    )
    parser.add_argument(
        "--features-topic",
        default=_env("KAFKA_FEATURES_TOPIC", None),
        help="also publish every scored feature row here (audit; off by default)",
    )
    parser.add_argument("--group-id", default=_env("KAFKA_SCORER_GROUP", "fraud-detection-scorer"))
    parser.add_argument(
        "--model-uri",
        default=_env("SCORER_MODEL_URI", None),
        help=(
            "models:/<name>@<alias> or models:/<name>/<version> "
            "(default: <registered_model_name>@champion)"
        ),
    )
    parser.add_argument(
        "--model-check-interval",
        type=float,
        default=float(_env("SCORER_MODEL_CHECK_INTERVAL_S", "30")),
        help="seconds between checks of where the alias points (default: %(default)s)",
    )
    parser.add_argument(
        "--start-from",
        choices=START_FROM,
        default="earliest",
        help=(
            "with no committed offset: score the whole topic (earliest) or only new messages "
            "(latest)"
        ),
    )
    parser.add_argument("--max-batch", type=int, default=500, help="most messages per micro-batch")
    parser.add_argument("--poll-timeout-ms", type=int, default=100)
    parser.add_argument(
        "--status-every", type=float, default=30.0, help="seconds between status lines"
    )
    parser.add_argument(
        "--env",
        default="kafka",
        help="Kedro environment for parameters and credentials (default: %(default)s)",
    )
    parser.add_argument(
        "--project-path", type=Path, default=Path.cwd(), help="Kedro project root (default: cwd)"
    )
    parser.add_argument(
        "--producer-client",
        choices=PRODUCER_CLIENTS,
        default=_env("SCORER_PRODUCER_CLIENT", "kafka-python"),
        help="Kafka client sending predictions and dead letters (default: %(default)s)",
    )
    parser.add_argument(
        "--slow-loop-ms",
        type=float,
        default=100.0,
        help="log a scoring iteration slower than this with its phases (0: never; "
        "default: %(default)s)",
    )
    parser.add_argument(
        "--reason-codes",
        choices=REASON_CODES,
        default=_env("SCORER_REASON_CODES", "alerts"),
        help="top three reasons on alerts (decision 1), on every prediction (all), or off "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--shadow-model-uri",
        default=_env("SCORER_SHADOW_MODEL_URI", None),
        help="also score every transaction with this model in shadow, e.g. "
        "models:/<name>@challenger (followed like the champion; nothing is shadowed while "
        "the alias points nowhere); its predictions go to --shadow-topic, nothing acts on "
        "them (default: off)",
    )
    parser.add_argument(
        "--shadow-topic",
        default=_env("KAFKA_SHADOW_PREDICTIONS_TOPIC", "fraud_predictions_shadow"),
    )
    parser.add_argument(
        "--online-store",
        default=_env("SCORER_ONLINE_STORE_URL", None),
        help="redis://host:port/db shared by N scorer processes of one --group-id: each "
        "owns some partitions (keyed by customer) and the terminal and category windows "
        "live in the store (default: none, one process reads every partition)",
    )
    parser.add_argument(
        "--online-store-namespace",
        default=_env("SCORER_ONLINE_STORE_NAMESPACE", None),
        help="prefix of the store's keys (default: the group id)",
    )
    parser.add_argument(
        "--align-timeout-ms",
        type=float,
        default=float(_env("SCORER_ALIGN_TIMEOUT_MS", "200")),
        help="with --online-store: longest wait a batch makes for the other processes' "
        "partitions to be written up to its time",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser


def project_config(project_path: Path, env: str) -> dict[str, Any]:
    """``parameters``, the ``kafka`` credentials, ``globals`` and the MLflow tracking URI
    of a Kedro environment."""
    loader = load_project_config(project_path, env, extra_patterns=EXTRA_PATTERNS)

    def section(name: str) -> dict[str, Any]:
        return config_section(loader, name)

    tracking = (section("mlflow").get("server") or {}).get(
        "mlflow_tracking_uri"
    ) or "sqlite:///mlflow.db"
    if tracking.startswith("sqlite:///") and not tracking.startswith("sqlite:////"):
        tracking = f"sqlite:///{(project_path / tracking.removeprefix('sqlite:///')).resolve()}"
    return {
        "parameters": section("parameters"),
        "kafka": dict(section("credentials").get("kafka") or {}),
        "model_name": section("globals").get("registered_model_name", "fraud-detection"),
        "tracking_uri": tracking,
    }


def _online_features(
    args: argparse.Namespace, params: dict[str, Any]
) -> tuple[OnlineFeatures, RedisWindows | None]:
    """The feature state, on the shared store of ``--online-store`` if there is one."""
    if not args.online_store:
        return OnlineFeatures(params), None
    store = RedisWindows.connect(
        args.online_store,
        namespace=args.online_store_namespace or args.group_id,
        horizon_ms=int(build_spec(params).horizon // pd.Timedelta(milliseconds=1)),
    )
    return OnlineFeatures(params, shared=store), store


def _bounds(ingestion: dict[str, Any] | None) -> MessageBounds | None:
    """The ingestion rules as per-message bounds: the scorer has no quarantine."""
    if not ingestion:
        logger.warning("No params:ingestion: timestamps and amounts are not bounded")
        return None
    return MessageBounds.from_params(ingestion)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fraud-detection-score``; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="register_new_resolver", category=UserWarning)
    config = project_config(args.project_path, args.env)
    mlflow.set_tracking_uri(config["tracking_uri"])
    try:
        features, store = _online_features(args, config["parameters"].get("features") or {})
    except (OnlineStoreError, ValueError) as exc:  # no store there, or a feature it cannot hold
        logger.error("%s", exc)
        return 1
    pending = LabelParams.from_dict(config["parameters"].get("labels") or {}).pending
    watcher = ChampionWatcher(
        args.model_uri or f"models:/{config['model_name']}@champion",
        check_interval_s=args.model_check_interval,
        required_columns=features.feature_names(),
    )
    try:
        watcher.load()
    except ModelUnavailableError as exc:
        logger.error("%s", exc)
        return 1
    scorer_config = ScorerConfig(
        bootstrap_servers=args.bootstrap_servers,
        transactions_topic=args.transactions_topic,
        labels_topic=args.labels_topic or None,
        predictions_topic=args.predictions_topic,
        dead_letter_topic=args.dead_letter_topic or None,
        features_topic=args.features_topic or None,
        group_id=args.group_id,
        start_from=args.start_from,
        max_batch=args.max_batch,
        poll_timeout_ms=args.poll_timeout_ms,
        status_every_s=args.status_every,
        credentials=config["kafka"],
        bounds=_bounds(config["parameters"].get("ingestion")),
        max_pending_labels=pending.max_labels,
        max_pending_label_age_s=pd.Timedelta(pending.max_age).total_seconds(),
        freeze_after_replay=True,
        producer_client=args.producer_client,
        slow_loop_ms=args.slow_loop_ms,
        reason_codes=args.reason_codes,
        shadow_topic=args.shadow_topic,
        align_timeout_ms=args.align_timeout_ms,
    )
    shadow = None
    if args.shadow_model_uri:
        # Off the champion's path: its own process, at a lower CPU priority.
        shadow = ShadowProcess(
            args.shadow_model_uri,
            scorer_config,
            tracking_uri=mlflow.get_tracking_uri(),
            required_columns=features.feature_names(),
            check_interval_s=args.model_check_interval,
            log_level=logging.getLogger().getEffectiveLevel(),
        )
        try:
            shadow.start()
        except RuntimeError as exc:  # e.g. no such model, or it needs columns we lack
            logger.error("%s", exc)
            return 1
    scorer = RealTimeScorer(scorer_config, features, watcher, shadow=shadow, store=store)

    def _stop(signum: int, _frame: Any) -> None:
        logger.info(
            "Received %s: finishing the current batch, then committing and stopping",
            signal.Signals(signum).name,
        )
        scorer.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    watcher.start()
    try:
        counters = scorer.run()
    except KafkaConnectionError as exc:
        logger.error("%s", exc)
        return 2
    except (ScorerError, OnlineStoreError) as exc:
        logger.error("%s", exc)
        return 1
    finally:
        watcher.stop()
        if shadow is not None:
            shadow.stop()
    logger.info(
        "Scorer stopped: %s; gc pauses %s",
        counters.summary(),
        scorer.gc_pauses.summary(frozen=True),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
