"""A real Apache Kafka broker for the integration tests, started with the project's
own script (scripts/kafka.sh) in a temporary data dir on free ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import RetriableError
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from fraud_detection.streaming.publish import (
    PRODUCER_DEFAULTS,
    DeliveryReport,
    produce_frame,
)
from tests.conftest import PROJECT_ROOT
from tests.e2e.test_default_run import make_project

SCRIPT = PROJECT_ROOT / "scripts" / "kafka.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Broker:
    """One single-node KRaft broker run by scripts/kafka.sh."""

    data_dir: Path
    port: int
    controller_port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def script(self, command: str, timeout: float = 240) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "KAFKA_DATA_DIR": str(self.data_dir),
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "PYTHON": sys.executable,
        }
        return subprocess.run(
            ["bash", str(SCRIPT), command],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self) -> None:
        result = self.script("start")
        if result.returncode != 0:
            pytest.fail(
                f"scripts/kafka.sh start failed (exit {result.returncode}); Java 17+ and Maven "
                f"are needed (see docs/kafka.md):\n{result.stderr[-4000:]}"
            )

    def stop(self) -> None:
        self.script("stop", timeout=60)

    def admin(self) -> KafkaAdminClient:
        return KafkaAdminClient(bootstrap_servers=self.bootstrap, bootstrap_timeout_ms=10_000)

    def create_topic(self, name: str, partitions: int = 1) -> None:
        admin = self.admin()
        try:
            admin.create_topics({name: {"num_partitions": partitions, "replication_factor": 1}})
        finally:
            admin.close()

    def committed(self, group: str, topic: str) -> dict[int, int]:
        """Committed offsets of ``group`` on ``topic``, by partition (empty: none)."""
        admin = self.admin()
        deadline = time.monotonic() + 30
        try:
            while True:
                try:
                    offsets = admin.list_group_offsets({group: None}).get(group, {})
                    break
                except RetriableError:  # e.g. the offsets topic is still being created
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        finally:
            admin.close()
        return {
            tp.partition: meta.offset
            for tp, meta in offsets.items()
            if tp.topic == topic and meta.offset >= 0
        }

    def end_offsets(self, topic: str) -> dict[int, int]:
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, bootstrap_timeout_ms=10_000)
        try:
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
            return {tp.partition: offset for tp, offset in consumer.end_offsets(tps).items()}
        finally:
            consumer.close()

    def read_all(self, topic: str) -> list:
        """Every record of ``topic`` (without a consumer group)."""
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            bootstrap_timeout_ms=10_000,
            auto_offset_reset="earliest",
        )
        try:
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
            consumer.assign(tps)
            end = consumer.end_offsets(tps)
            records: list = []
            while any(consumer.position(tp) < end[tp] for tp in tps):
                for batch in consumer.poll(timeout_ms=1000).values():
                    records.extend(batch)
            return records
        finally:
            consumer.close()

    def produce(self, topic: str, frame: pd.DataFrame) -> DeliveryReport:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, **PRODUCER_DEFAULTS)
        try:
            return produce_frame(producer, topic, frame)
        finally:
            producer.close()

    def produce_raw(self, topic: str, values: list[bytes | None]) -> None:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        try:
            futures = [producer.send(topic, value=value, key=b"k") for value in values]
            producer.flush(timeout=60)
            assert all(f.succeeded() for f in futures)
        finally:
            producer.close()


def start_broker(root: Path) -> Broker:
    broker = Broker(data_dir=root / "kafka", port=free_port(), controller_port=free_port())
    broker.start()
    return broker


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory) -> Iterator[Broker]:
    if shutil.which("bash") is None:
        pytest.fail("bash is needed to run scripts/kafka.sh")
    broker = start_broker(tmp_path_factory.mktemp("kafka-broker"))
    yield broker
    broker.stop()


@dataclass
class KafkaProject:
    """A copy of the project wired to a broker, a topic and a consumer group."""

    path: Path
    topic: str
    group: str

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic}.dlq"

    @property
    def labels_topic(self) -> str:
        """Where this project's labels go, apart from the transactions."""
        return f"{self.topic}.labels"

    def run(self, pipeline: str, runtime_params: dict | None = None, **kwargs) -> None:
        bootstrap_project(self.path)
        with KedroSession.create(
            project_path=self.path, env="kafka", runtime_params=runtime_params or {}
        ) as session:
            session.run(pipeline_names=[pipeline], **kwargs)

    # The kafka environment keeps one parquet file per ingested batch in these folders.
    def validated(self) -> pd.DataFrame:
        return self._all(self.path / "data/02_intermediate/validated_batches")

    def quarantined(self) -> pd.DataFrame:
        return self._all(self.path / "data/02_intermediate/quarantined_batches")

    def labels(self) -> pd.DataFrame:
        """Every label stored so far (one batch per run)."""
        return self._all(self.path / "data/02_intermediate/label_batches")

    def labelled(self) -> pd.DataFrame:
        """The training data: the validated transactions with the labels known."""
        return pd.read_parquet(self.path / "data/02_intermediate/labelled_transactions.parquet")

    def batches(self) -> list[Path]:
        folder = self.path / "data/02_intermediate/validated_batches"
        return sorted(folder.glob("batch-*.parquet"))

    @staticmethod
    def _all(folder: Path) -> pd.DataFrame:
        """Every row of every batch file, as anything reading the folder sees them."""
        files = sorted(folder.glob("batch-*.parquet"))
        if not files:
            return pd.DataFrame()
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def kafka_project(
    root: Path, broker: Broker, name: str, monkeypatch: pytest.MonkeyPatch
) -> KafkaProject:
    """A project copy in ``root`` whose kafka environment reads topic ``name``."""
    path = make_project(root)
    project = KafkaProject(path=path, topic=name, group=f"{name}-ingestion")
    monkeypatch.chdir(path)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap)
    monkeypatch.setenv("KAFKA_TRANSACTIONS_TOPIC", project.topic)
    monkeypatch.setenv("KAFKA_CONSUMER_GROUP", project.group)
    monkeypatch.setenv("KAFKA_LABELS_TOPIC", project.labels_topic)
    monkeypatch.delenv("KAFKA_DEAD_LETTER_TOPIC", raising=False)
    monkeypatch.delenv("KAFKA_LABELS_DEAD_LETTER_TOPIC", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", name)
    return project
