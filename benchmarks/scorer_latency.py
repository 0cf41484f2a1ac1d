"""Real-time scorer benchmark: sustained throughput and end-to-end latency on a real broker.

Run with ``make bench-scorer`` (never as a timed test). Steps:

1. a broker: ``--bootstrap-servers`` or a temporary one started by ``scripts/kafka.sh``;
2. a model: ``--model-uri`` with ``MLFLOW_TRACKING_URI``, or an XGBoost model with the
   project's default search-space settings fitted on simulated data and registered
   in a temporary MLflow database as ``fraud-detection@champion``;
3. simulated transactions (``params:simulation`` population, 90 days): the first
   ``--history-days`` are produced first and replayed into the scorer's state
   (``--start-from latest``), so windows hold realistic history;
4. for each rate in ``--rates``: a separate producer process sends the next
   transactions at that fixed rate for ``--seconds`` (``acks=all``), while this
   process consumes ``fraud_predictions``. End-to-end latency is the time from the
   transaction's produce timestamp (Kafka CreateTime, set by the producer at send) to
   the moment this process receives the prediction; "scored" latency stops at the
   prediction's own produce timestamp (set by the scorer);
5. drain: ``--drain`` transactions are sent to the running scorers as fast as the
   producer can (librdkafka); their count over the time from the first prediction to
   the last (the predictions' produce timestamps) is the scorers' throughput ceiling.

``--processes N`` runs N scorer processes in one consumer group on a temporary Redis
(``scripts/redis.sh``) as their shared online store (``--online-store``; with one
process too, to price the store alone). Each step also gives the CPU time the scorer
processes and Redis spent per transaction: what a reader needs to size a cluster.

Transactions go out without label, and each label on the label topic once the replay
passes its time (``params:labels.delay``), as ``fraud-detection-produce`` sends them.
``--soak-seconds`` replaces the steps by one long step whose cards are renewed every
``--generation-days`` of event time (bounded state: the scorer's RSS must stay flat).

Usage::

    python benchmarks/scorer_latency.py [--rates 500 1000 2000] [--seconds 180]
    python benchmarks/scorer_latency.py --soak-seconds 1800 --soak-rate 1000
    python benchmarks/scorer_latency.py --processes 2 --rates 1000 2000 --seconds 60

Prints a table; writes benchmarks/results/scorer_latency.json (kept local).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import confluent_kafka
import numpy as np
import orjson
import pandas as pd
import yaml
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MODEL = "fraud-detection"
RUN = time.strftime("%Y%m%d%H%M%S")  # fresh topics and group on a shared broker
TOPICS = {
    "tx": f"bench-{RUN}-transactions",
    "labels": f"bench-{RUN}-labels",
    "predictions": f"bench-{RUN}-predictions",
    "warm_up": f"bench-{RUN}-warm-up",  # the load generator's first message, unread
    "shadow": f"bench-{RUN}-shadow",  # --shadow: the challenger's predictions
}
# --shadow: the challenger, another XGBoost (depth 4, learning rate 0.05).
CHALLENGER = {"max_depth": 4, "learning_rate": 0.05}


def say(*parts: object) -> None:
    """The benchmark's report goes to stdout."""
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _ScriptedServer:
    """A server run by one of the project's scripts (``start``/``stop``) with ``env``."""

    script = ""
    env: dict[str, str]

    def _script(self, command: str) -> str:
        result = subprocess.run(
            ["bash", str(ROOT / "scripts" / self.script), command],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"scripts/{self.script} {command} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def __enter__(self):
        self._script("start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._script("stop")


class TemporaryBroker(_ScriptedServer):
    """A broker run by scripts/kafka.sh in a temporary data dir on free ports."""

    script = "kafka.sh"

    def __init__(self, workdir: Path):
        self.env = {
            **os.environ,
            "KAFKA_DATA_DIR": str(workdir / "kafka"),
            "KAFKA_PORT": str(_free_port()),
            "KAFKA_CONTROLLER_PORT": str(_free_port()),
            "PYTHON": sys.executable,
        }
        self.bootstrap = f"127.0.0.1:{self.env['KAFKA_PORT']}"


def register_model(
    tracking_uri: str,
    transactions: pd.DataFrame,
    params: dict,
    alias: str = "champion",
    settings: dict | None = None,
) -> str:
    """An XGBoost pipeline like the project's (default candidate settings, or
    ``settings``), registered under ``alias`` in ``tracking_uri``."""
    import mlflow
    from mlflow.tracking import MlflowClient
    from xgboost import XGBClassifier

    from fraud_detection import schema
    from fraud_detection.features import (
        create_features,
        feature_columns,
    )
    from fraud_detection.model import FraudModel, build_model_pipeline

    features = create_features(transactions, params["features"])
    numeric, categorical = feature_columns(features)
    init = {
        **params["training"]["candidates"]["xgboost"]["init"],
        "max_depth": 6,
        "learning_rate": 0.1,
        **(settings or {}),
    }
    pipeline = build_model_pipeline(
        XGBClassifier(**init), numeric, categorical, params["training"]["selection"]
    )
    pipeline.fit(features[numeric + categorical], features[schema.LABEL].astype(int))
    model = FraudModel(pipeline, 0.5, numeric + categorical, "xgboost")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("scorer-benchmark")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=model,
            registered_model_name=MODEL,
            input_example=features[numeric + categorical].head(3),
        )
    MlflowClient().set_registered_model_alias(MODEL, alias, info.registered_model_version)
    return f"models:/{MODEL}@{alias}"


def _paced_producer(  # noqa: PLR0917
    bootstrap: str,
    messages: list[tuple[str, bytes, bytes, int]],
    rate: float,
    ready: mp.Event,
    warm_up_topic: str,
) -> None:
    """Child process: sends pre-encoded ``(topic, value, key, slot)`` messages, each at
    ``slot / rate`` seconds from the start (acks=all): the transactions one slot apart,
    each label at the slot of the transaction it follows."""
    # librdkafka: the load generator must not take the CPU the scorer is measured on
    # (kafka-python spent about half a core at 1,000 tx/s here).
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 0,
            "socket.nagle.disable": True,
        }
    )
    # Connected to the broker, with the partitions' leaders known, before the clock
    # starts: else the first second's messages wait for librdkafka's lazy connection and
    # metadata (up to a second of end-to-end latency in the first second of a step).
    for topic in {m[0] for m in messages}:
        producer.list_topics(topic, timeout=30)
    producer.produce(warm_up_topic, value=b"{}")  # TOPICS differ in this spawned process
    if producer.flush(30):
        raise SystemExit("the paced producer could not reach the broker in 30 s")
    ready.set()
    parent = os.getppid()
    started = time.monotonic()
    interval = 1.0 / rate
    for n, (topic, value, key, slot) in enumerate(messages):
        if n % 1000 == 0 and os.getppid() != parent:
            raise SystemExit("the benchmark stopped: so does its load generator")
        delay = started + slot * interval - time.monotonic()
        if delay > 0.0005:
            time.sleep(delay)
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    if producer.flush(120):
        raise SystemExit("the paced producer could not deliver every message in 120 s")


def _rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` (VmRSS), 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class TemporaryRedis(_ScriptedServer):
    """A Redis server run by scripts/redis.sh in a temporary dir on a free port."""

    script = "redis.sh"

    def __init__(self, workdir: Path):
        self.env = {
            **os.environ,
            "REDIS_DATA_DIR": str(workdir / "redis"),
            "REDIS_PORT": str(_free_port()),
        }
        self.url = f"redis://127.0.0.1:{self.env['REDIS_PORT']}/0"

    @property
    def pid(self) -> int:
        return int((Path(self.env["REDIS_DATA_DIR"]) / "redis.pid").read_text())


class RssSampler:
    """Samples a process's resident memory every ``every_s`` seconds in a thread."""

    def __init__(self, pid: int, every_s: float = 5.0):
        import threading

        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._pid, self._every = pid, every_s
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - self._started, _rss_bytes(self._pid)))
            self._stop.wait(self._every)

    def stop(self) -> list[tuple[float, int]]:
        self._stop.set()
        self._thread.join()
        return self.samples


def _end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        return consumer.end_offsets(tps)
    finally:
        consumer.close()


def _send_times(bootstrap: str, topic: str, start: dict[TopicPartition, int]) -> dict[str, float]:
    """Produce timestamps (ms) of the transactions sent from ``start`` on, by id."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, max_poll_records=50_000)
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        end = consumer.end_offsets(list(start))
        out: dict[str, float] = {}
        while any(consumer.position(tp) < end[tp] for tp in start):
            for records in consumer.poll(timeout_ms=1000).values():
                for r in records:
                    out[orjson.loads(r.value)["transaction_id"]] = float(r.timestamp)
        return out
    finally:
        consumer.close()


class PredictionReader:
    """Reads predictions from the current end of the topic, noting when each arrives.

    librdkafka's consumer waits in C (no polling loop taking the scorer's CPU)."""

    def __init__(self, bootstrap: str):
        partitions = _end_offsets(bootstrap, TOPICS["predictions"])
        self.consumer = confluent_kafka.Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-{RUN}-reader",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,
                "socket.nagle.disable": True,
            }
        )
        self.consumer.assign(
            [
                confluent_kafka.TopicPartition(tp.topic, tp.partition, offset)
                for tp, offset in partitions.items()
            ]
        )

    def collect(self, expected: set[str], timeout_s: float) -> dict[str, dict]:
        received: dict[str, dict] = {}
        deadline = time.monotonic() + timeout_s
        while not expected <= received.keys() and time.monotonic() < deadline:
            # poll returns as soon as one message is there; consume(timeout=0) then takes
            # what else is queued (consume with a timeout waits for all num_messages).
            first = self.consumer.poll(0.1)
            if first is None:
                continue
            for r in [first, *self.consumer.consume(num_messages=10_000, timeout=0)]:
                if r.error():
                    raise SystemExit(f"reading predictions failed: {r.error()}")
                now = time.time() * 1000.0
                message = orjson.loads(r.value())
                received.setdefault(
                    message["transaction_id"],
                    {
                        "received_ms": now,
                        "scored_ms": float(r.timestamp()[1]),
                        "processing_ms": message["processing_latency_ms"],
                    },
                )
        return received

    def close(self) -> None:
        self.consumer.close()


class ScorerProcess:
    def __init__(self, bootstrap: str, tracking_uri: str, model_uri: str, log: Path, *extra: str):
        script = Path(sys.executable).with_name("fraud-detection-score")
        command = (
            [str(script)] if script.exists() else [sys.executable, "-m", "fraud_detection.scoring"]
        )
        self.log = log
        self.offset = log.stat().st_size if log.exists() else 0
        args = [
            "--bootstrap-servers",
            bootstrap,
            "--transactions-topic",
            TOPICS["tx"],
            "--labels-topic",
            TOPICS["labels"],
            "--predictions-topic",
            TOPICS["predictions"],
            "--dead-letter-topic",
            f"{TOPICS['tx']}.dlq",
            "--group-id",
            f"bench-{RUN}-scorer",
            "--model-uri",
            model_uri,
            "--project-path",
            str(ROOT),
            "--status-every",
            "10",
            "--slow-loop-ms",  # the log says where each stall of the tail went
            "30",
            *extra,
        ]
        with log.open("a") as out:
            self.process = subprocess.Popen(
                [*command, *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
            )
        deadline = time.monotonic() + 600
        # The line after the warm-up and the freeze: sending earlier would time them.
        while f"Scoring '{TOPICS['tx']}' into" not in log.read_text()[self.offset :]:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"The scorer did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)

    def text(self) -> str:
        return self.log.read_text()[self.offset :]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=120)


def start_scorers(n: int, logs: Path, *args: str) -> list[ScorerProcess]:
    """``n`` scorer processes; with several, returns once each owns its partitions."""
    scorers = [ScorerProcess(*args[:3], logs / f"scorer-{k}.log", *args[3:]) for k in range(n)]
    deadline = time.monotonic() + 600
    while not all("Scoring from offsets" in s.text() for s in scorers) or (
        n > 1 and "went to another scorer process" not in scorers[0].text()
    ):
        if time.monotonic() > deadline:
            raise SystemExit("The scorer processes never got their partitions")
        time.sleep(0.5)
    time.sleep(3 if n > 1 else 0)  # the group settles
    return scorers


def _summary(
    rate: float | None, sent: dict[str, float], received: dict[str, dict], window_s: float
) -> dict:
    ids = [tid for tid in sent if tid in received]
    delivered = np.array([received[t]["received_ms"] - sent[t] for t in ids])
    scored = np.array([received[t]["scored_ms"] - sent[t] for t in ids])
    processing = np.array([received[t]["processing_ms"] for t in ids])
    first_sent = min(sent.values())
    last_received = max(received[t]["received_ms"] for t in ids) if ids else first_sent
    return {
        "offered_tx_per_s": rate,
        "sent": len(sent),
        "predicted": len(ids),
        "lost": len(sent) - len(ids),
        "window_s": round(window_s, 1),
        "throughput_tx_per_s": round(
            len(ids) / max((last_received - first_sent) / 1000.0, 1e-9), 1
        ),
        "e2e_ms_p50": round(float(np.percentile(delivered, 50)), 2) if ids else None,
        "e2e_ms_p99": round(float(np.percentile(delivered, 99)), 2) if ids else None,
        "e2e_ms_p99_9": round(float(np.percentile(delivered, 99.9)), 2) if ids else None,
        "e2e_ms_max": round(float(delivered.max()), 2) if ids else None,
        "scored_ms_p50": round(float(np.percentile(scored, 50)), 2) if ids else None,
        "scored_ms_p99": round(float(np.percentile(scored, 99)), 2) if ids else None,
        "scored_ms_p99_9": round(float(np.percentile(scored, 99.9)), 2) if ids else None,
        "processing_ms_p50": round(float(np.percentile(processing, 50)), 2) if ids else None,
        "processing_ms_p99": round(float(np.percentile(processing, 99)), 2) if ids else None,
        "worst_seconds": _worst_seconds(ids, sent, delivered, first_sent),
    }


def _worst_seconds(
    ids: list[str], sent: dict[str, float], delivered: np.ndarray, first_sent: float
) -> list[dict]:
    """The five seconds of sending with the highest end-to-end latency: one stall (a
    pause somewhere) shows as a few adjacent seconds, queueing as many spread ones."""
    if not ids:
        return []
    second = ((np.array([sent[t] for t in ids]) - first_sent) // 1000).astype(int)
    frame = pd.DataFrame({"second": second, "ms": delivered})
    worst = frame.groupby("second")["ms"].agg(["max", "median", "size"]).nlargest(5, "max")
    return [
        {"second": int(i), "max_ms": round(r["max"], 1), "median_ms": round(r["median"], 1)}
        for i, r in worst.iterrows()
    ]


def soak_transactions(base: pd.DataFrame, rows: int, generation_days: int) -> pd.DataFrame:
    """``rows`` transactions from ``base`` repeated in time (each pass starts where the
    previous one ended). With ``generation_days``, the cards are replaced by new ones
    every that many days of event time: customers keep arriving and the old ones fall
    past the horizon, the way cards are issued and expire, so the scorer's state must
    evict to stay flat. With 0, the same customers go on."""
    from fraud_detection import schema

    base = base.sort_values(schema.TIMESTAMP, kind="stable").reset_index(drop=True)
    start = base[schema.TIMESTAMP].min().normalize()
    span = base[schema.TIMESTAMP].max().normalize() + pd.Timedelta(days=1) - start
    if generation_days:
        generation = (base[schema.TIMESTAMP] - start) // pd.Timedelta(days=generation_days)
        generation = generation.astype(int)
        generations_per_pass = int(generation.max()) + 1
    passes, total = [], 0
    while total < rows:
        k = len(passes)
        part = base.copy()
        part[schema.TIMESTAMP] = part[schema.TIMESTAMP] + k * span
        if generation_days:
            gen = (generation + k * generations_per_pass).astype(str)
            part[schema.CUSTOMER_ID] = "g" + gen + "-" + part[schema.CUSTOMER_ID].astype(str)
        part[schema.TRANSACTION_ID] = f"p{k}-" + part[schema.TRANSACTION_ID].astype(str)
        passes.append(part)
        total += len(part)
    return pd.concat(passes, ignore_index=True).head(rows)


def _label_plan(transactions: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The label messages of ``transactions`` (the project's ``params:labels.delay``,
    as ``fraud-detection-produce`` sends them) and, for each, how many transactions go
    out before it."""
    from fraud_detection import schema
    from fraud_detection.streaming.labels import LabelParams, schedule_labels, send_positions

    config = yaml.safe_load((ROOT / "conf/base/parameters_labels.yml").read_text())["labels"]
    label_params = LabelParams.from_dict(config)
    labels = schedule_labels(transactions, label_params.delay, label_params.seed)
    positions = send_positions(transactions[schema.TIMESTAMP], labels[schema.LABEL_TIMESTAMP])
    return labels, positions


def _messages(
    chunk: pd.DataFrame, first: int, labels: pd.DataFrame, positions: np.ndarray
) -> list[tuple[str, bytes, bytes, int]]:
    """The transactions ``first .. first + len(chunk)`` of the stream (without labels)
    and the labels due among them, in send order, with their slots."""
    from fraud_detection import schema
    from fraud_detection.streaming.labels import strip_labels
    from fraud_detection.streaming.messages import encode_labels, encode_transactions

    tx_values = encode_transactions(strip_labels(chunk))
    tx_keys = [c.encode() for c in chunk[schema.CUSTOMER_ID]]
    due = (positions > first) & (positions <= first + len(chunk))
    chosen = labels.loc[due]
    label_values = encode_labels(chosen) if len(chosen) else []
    label_keys = [c.encode() for c in chosen[schema.CUSTOMER_ID]] if len(chosen) else []
    label_slots = positions[due] - first  # after the transaction at slot - 1
    out: list[tuple[str, bytes, bytes, int]] = []
    j = 0
    for i, (value, key) in enumerate(zip(tx_values, tx_keys, strict=True)):
        out.append((TOPICS["tx"], value, key, i))
        while j < len(label_values) and label_slots[j] <= i + 1:
            out.append((TOPICS["labels"], label_values[j], label_keys[j], i))
            j += 1
    return out


def _step(  # noqa: PLR0913
    bootstrap: str,
    scorers: list[ScorerProcess],
    redis_pid: int | None,
    chunk: pd.DataFrame,
    *,
    first: int,
    labels: pd.DataFrame,
    positions: np.ndarray,
    rate: float,
    seconds: float,
) -> dict:
    """Sends ``chunk`` (and its labels) at ``rate`` and summarises its predictions."""
    from fraud_detection import schema

    messages = _messages(chunk, first, labels, positions)
    reader = PredictionReader(bootstrap)
    before = _end_offsets(bootstrap, TOPICS["tx"])
    spawn = mp.get_context("spawn")
    ready = spawn.Event()
    child = spawn.Process(
        target=_paced_producer, args=(bootstrap, messages, rate, ready, TOPICS["warm_up"])
    )
    # Built before the first send: for a soak (1.8M ids) building it delays the reader.
    expected = set(chunk[schema.TRANSACTION_ID])
    rss = RssSampler(scorers[0].process.pid)
    pids = [s.process.pid for s in scorers]
    cpu_before = [_cpu_seconds(pid) for pid in pids]
    redis_before = _cpu_seconds(redis_pid) if redis_pid else 0.0
    child.start()
    ready.wait(60)
    started = time.monotonic()
    received = reader.collect(expected, timeout_s=seconds * 4 + 60)
    child.join()
    reader.close()
    samples = rss.stop()
    cpu = [_cpu_seconds(pid) - b for pid, b in zip(pids, cpu_before, strict=True)]
    redis_cpu = _cpu_seconds(redis_pid) - redis_before if redis_pid else 0.0
    sent = _send_times(bootstrap, TOPICS["tx"], before)
    step = _summary(rate, sent, received, time.monotonic() - started)
    scored = max(len(received), 1)
    step["scorer_cpu_s"] = [round(c, 1) for c in cpu]
    step["scorer_cpu_ms_per_tx"] = round(sum(cpu) * 1000 / scored, 3)
    step["redis_cpu_ms_per_tx"] = round(redis_cpu * 1000 / scored, 3)
    step["labels_sent"] = sum(1 for m in messages if m[0] == TOPICS["labels"])
    step["scorer_rss_mb"] = [round(b / 2**20, 1) for _, b in samples]
    step["scorer_rss_every_s"] = 5.0
    step["scorer_rss_after_warm_up"] = _rss_spread(step["scorer_rss_mb"])
    return step


def _rss_spread(rss_mb: list[float]) -> dict | None:
    """The scorer's RSS over the last two thirds of a step (the first third fills the
    state's horizon): min, max and the spread (max / min - 1) in percent."""
    tail = rss_mb[len(rss_mb) // 3 :]
    if not tail:
        return None
    low, high = min(tail), max(tail)
    return {"min_mb": low, "max_mb": high, "spread_pct": round((high / low - 1) * 100, 1)}


def run(
    args: argparse.Namespace, bootstrap: str, workdir: Path, redis: TemporaryRedis | None
) -> dict:
    from fraud_detection import schema
    from fraud_detection.simulator import simulate_transactions
    from fraud_detection.streaming.labels import strip_labels
    from fraud_detection.streaming.publish import (
        PRODUCER_DEFAULTS,
        produce_with_labels,
    )

    params = {
        name: yaml.safe_load((ROOT / f"conf/base/parameters_{name}.yml").read_text())
        for name in ("simulation", "feature_engineering", "training")
    }
    params = {
        "simulation": params["simulation"]["simulation"],
        "features": params["feature_engineering"]["features"],
        "training": params["training"]["training"],
    }
    transactions = simulate_transactions({**params["simulation"], "n_days": args.days})
    start = transactions[schema.TIMESTAMP].min().normalize()
    n_history = int(
        (transactions[schema.TIMESTAMP] < start + pd.Timedelta(days=args.history_days)).sum()
    )
    first_rate = args.soak_rate if args.soak_seconds else args.rates[0]
    warm_up_rows = int(first_rate * args.warm_up_seconds)
    if args.soak_seconds:
        live_rows = int(args.soak_rate * args.soak_seconds) + warm_up_rows
        generation_days = args.generation_days
    else:
        live_rows = int(sum(args.rates) * args.seconds) + args.drain + warm_up_rows
        generation_days = 0
    # In time order: the first history_days are the history, the rest the live stream.
    stream = soak_transactions(transactions, n_history + live_rows, generation_days)
    history, live = stream.iloc[:n_history], stream.iloc[n_history:]
    say(
        f"{len(stream)} transactions ({stream[schema.CUSTOMER_ID].nunique()} customers); "
        f"{len(history)} as history"
    )
    labels, positions = _label_plan(stream)

    tracking_uri = (
        os.environ.get("MLFLOW_TRACKING_URI")
        if args.model_uri
        else f"sqlite:///{workdir / 'mlflow.db'}"
    )
    model_uri = args.model_uri or register_model(tracking_uri, history, params)

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics(
        {
            TOPICS["tx"]: {"num_partitions": args.partitions, "replication_factor": 1},
            TOPICS["labels"]: {"num_partitions": args.partitions, "replication_factor": 1},
            TOPICS["predictions"]: {"num_partitions": args.partitions, "replication_factor": 1},
            TOPICS["warm_up"]: {"num_partitions": 1, "replication_factor": 1},
            **(
                {TOPICS["shadow"]: {"num_partitions": args.partitions, "replication_factor": 1}}
                if args.shadow
                else {}
            ),
        }
    )
    admin.close()
    # The history and the labels due within it, as the producer CLI sends them.
    history_labels = labels.loc[positions <= len(history)]
    producer = KafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_DEFAULTS)
    reports = produce_with_labels(
        producer, TOPICS["tx"], strip_labels(history), TOPICS["labels"], history_labels
    )
    producer.close()
    assert all(r.ok for r in reports), [r.summary() for r in reports]

    client: tuple[str, ...] = ("--producer-client", args.producer_client)
    if redis is not None:
        client += ("--online-store", redis.url, "--online-store-namespace", f"bench-{RUN}")
        client += ("--align-timeout-ms", str(args.align_timeout_ms))
    if args.shadow:
        shadow_uri = register_model(tracking_uri, history, params, "challenger", CHALLENGER)
        client += ("--shadow-model-uri", shadow_uri, "--shadow-topic", TOPICS["shadow"])
    scorers = start_scorers(
        args.processes,
        workdir,
        bootstrap,
        tracking_uri,
        model_uri,
        "--start-from",
        "latest",
        *client,
    )
    redis_pid = redis.pid if redis is not None else None
    results: dict = {
        "steps": [],
        "load_avg_before": os.getloadavg(),
        "processes": args.processes,
        "online_store": redis is not None,
        "align_timeout_ms": args.align_timeout_ms if redis is not None else None,
    }
    position = 0
    plan = (
        [(args.soak_rate, args.soak_seconds)]
        if args.soak_seconds
        else [(rate, args.seconds) for rate in args.rates]
    )
    if warm_up_rows:
        plan.insert(0, (first_rate, args.warm_up_seconds))
    for k, (rate, seconds) in enumerate(plan):
        n = int(rate * seconds)
        chunk = live.iloc[position : position + n]
        if len(chunk) < n:
            raise SystemExit(f"Not enough simulated transactions for {rate}/s x {seconds}s")
        step = _step(
            bootstrap,
            scorers,
            redis_pid,
            chunk,
            first=len(history) + position,
            labels=labels,
            positions=positions,
            rate=rate,
            seconds=seconds,
        )
        position += n
        step["customers"] = int(chunk[schema.CUSTOMER_ID].nunique())
        if warm_up_rows and k == 0:
            results["warm_up"] = step
            say(
                "warm-up (not counted):",
                json.dumps({"p99": step["e2e_ms_p99"], "max": step["e2e_ms_max"]}),
            )
        else:
            results["steps"].append(step)
            say(json.dumps({key: v for key, v in step.items() if key != "scorer_rss_mb"}))
        time.sleep(2)
    if args.soak_seconds or not args.drain:
        for scorer in scorers:
            scorer.stop()
        return results

    # Drain: the running scorers' ceiling on a backlog sent as fast as librdkafka can,
    # from the first prediction's produce time to the last one's.
    from fraud_detection.streaming.messages import encode_transactions

    chunk = strip_labels(live.iloc[position : position + args.drain])
    values = encode_transactions(chunk)
    keys = chunk[schema.CUSTOMER_ID].astype(str).tolist()
    reader = PredictionReader(bootstrap)
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    t0 = time.monotonic()
    for value, key in zip(values, keys, strict=True):
        while True:
            try:
                producer.produce(TOPICS["tx"], value=value, key=key.encode())
                break
            except BufferError:
                producer.poll(0.01)
    producer.flush(120)
    produce_s = time.monotonic() - t0
    received = reader.collect(set(chunk[schema.TRANSACTION_ID]), timeout_s=600)
    reader.close()
    for scorer in scorers:
        scorer.stop()
    scored = [r["scored_ms"] for r in received.values()]
    span_s = (max(scored) - min(scored)) / 1000.0 if len(scored) > 1 else float("nan")
    results["drain"] = {
        "messages": len(chunk),
        "predicted": len(received),
        "produce_s": round(produce_s, 2),
        "seconds": round(span_s, 2),
        "tx_per_s": round(len(received) / span_s, 1),
    }
    say(json.dumps(results["drain"]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bootstrap-servers", help="an existing broker (default: start a temporary one)"
    )
    parser.add_argument(
        "--model-uri",
        help="serve this registered model (with MLFLOW_TRACKING_URI) instead of a fresh one",
    )
    parser.add_argument("--rates", type=float, nargs="+", default=[500, 1000, 2000])
    parser.add_argument(
        "--seconds", type=float, default=180.0, help="duration of each fixed-rate step"
    )
    parser.add_argument("--days", type=int, default=90, help="simulated days")
    parser.add_argument(
        "--history-days", type=int, default=40, help="days replayed into the state before measuring"
    )
    parser.add_argument("--drain", type=int, default=30_000, help="backlog size of the drain step")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument(
        "--soak-seconds",
        type=float,
        default=0.0,
        help="instead of the steps: one long step at --soak-rate, new cards every "
        "--generation-days, the scorer's RSS sampled every 5 s",
    )
    parser.add_argument("--soak-rate", type=float, default=1000.0)
    parser.add_argument(
        "--warm-up-seconds",
        type=float,
        default=10.0,
        help="traffic at the first rate before the first step, not counted: the first "
        "seconds after the scorer's start (connections, first fetches) (default: %(default)s)",
    )
    parser.add_argument("--generation-days", type=int, default=2)
    from fraud_detection.scoring.service import PRODUCER_CLIENTS

    parser.add_argument(
        "--producer-client",
        choices=PRODUCER_CLIENTS,
        default="kafka-python",
        help="the scorer's client for predictions (its --producer-client)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="scorer processes in one consumer group; more than one (or --online-store) "
        "shares the terminal and category windows in a temporary Redis",
    )
    parser.add_argument(
        "--online-store",
        action="store_true",
        help="use the shared online store with one process too (its cost alone)",
    )
    parser.add_argument(
        "--align-timeout-ms",
        type=float,
        default=200.0,
        help="with the store: the scorers' --align-timeout-ms (0: no wait for the other "
        "processes' partitions)",
    )
    parser.add_argument(
        "--shadow",
        action="store_true",
        help="also serve a challenger in shadow (its --shadow-model-uri): the champion's "
        "latency with the extra model",
    )
    args = parser.parse_args()
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    workdir = Path(tempfile.mkdtemp(prefix="scorer-bench-"))
    with_store = args.processes > 1 or args.online_store
    try:
        with TemporaryRedis(workdir) if with_store else contextlib.nullcontext() as redis:
            if args.bootstrap_servers:
                results = run(args, args.bootstrap_servers, workdir, redis)
            else:
                with TemporaryBroker(workdir) as broker:
                    results = run(args, broker.bootstrap, workdir, redis)
    finally:
        for k, log in enumerate(sorted(workdir.glob("scorer-*.log"))):
            RESULTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(log, RESULTS / f"scorer_latency{'' if k == 0 else f'-{k}'}.log")
    results["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg": os.getloadavg(),
    }
    results["command"] = " ".join(["python", *sys.argv])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scorer_latency.json").write_text(json.dumps(results, indent=2))
    load = results["load_avg_before"]
    say(
        f"\n{results['processes']} scorer process(es), "
        f"{'shared online store (Redis)' if results['online_store'] else 'no online store'}"
    )
    say(f"\nload average before the first step: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    say(
        "| offered tx/s | s | throughput tx/s | e2e p50 ms | e2e p99 ms | e2e p99.9 ms "
        "| e2e max ms | scored p99 ms | processing p99 ms | predicted/sent | scorer RSS MB "
        "first/last/max | scorer CPU ms/tx | Redis CPU ms/tx |"
    )
    say("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in results["steps"]:
        rss = s["scorer_rss_mb"] or [0]
        say(
            f"| {s['offered_tx_per_s']:,.0f} | {s['window_s']:.0f} "
            f"| {s['throughput_tx_per_s']:,.0f} "
            f"| {s['e2e_ms_p50']} | {s['e2e_ms_p99']} | {s['e2e_ms_p99_9']} "
            f"| {s['e2e_ms_max']} | {s['scored_ms_p99']} | {s['processing_ms_p99']} "
            f"| {s['predicted']}/{s['sent']} | {rss[0]:.0f}/{rss[-1]:.0f}/{max(rss):.0f} "
            f"| {s['scorer_cpu_ms_per_tx']} | {s['redis_cpu_ms_per_tx']} |"
        )
    for s in results["steps"]:
        spread = s.get("scorer_rss_after_warm_up")
        if args.soak_seconds and spread:
            say(
                f"\nscorer RSS over the last two thirds of the soak: {spread['min_mb']:.0f} to "
                f"{spread['max_mb']:.0f} MB ({spread['spread_pct']}% spread); "
                f"{s['customers']:,} distinct customers"
            )
    drain = results.get("drain")
    if drain:
        say(
            f"\ndrain: {drain['messages']} queued transactions scored in {drain['seconds']} s "
            f"({drain['tx_per_s']:,.0f} tx/s)"
        )
    if all(s["lost"] == 0 for s in results["steps"]):
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
