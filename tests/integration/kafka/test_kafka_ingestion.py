"""Ingestion from a real Kafka broker: every transaction once, labels only from their
own topic (late labels still reaching the training data), the training flow on top,
poison messages dead-lettered, crashes and a stopped broker losing nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from fraud_detection import schema
from fraud_detection.datasets.kafka_dataset import KafkaDataset
from fraud_detection.datasets.parquet_batches_dataset import ParquetBatchesDataset
from fraud_detection.streaming.labels import parse_delay, schedule_labels, strip_labels
from fraud_detection.validation import StartupValidationError
from tests.conftest import make_transactions
from tests.e2e.test_default_run import SMALL_RUN
from tests.integration.kafka.conftest import free_port, kafka_project, start_broker

pytestmark = pytest.mark.integration

SIMULATOR_ARGS = ["--days", "50", "--customers", "400", "--terminals", "800", "--seed", "7"]


def _produce_cli(*args: str, servers: str, cwd: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("fraud-detection-produce")
    command = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-m", "fraud_detection.streaming.producer"]
    )
    return subprocess.run(
        [*command, "--bootstrap-servers", servers, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# ------------------------------------------------- produce, ingest, train --


@pytest.fixture(scope="module")
def streamed(kafka_broker, tmp_path_factory):
    """Simulated transactions sent by the producer CLI to a 3-partition topic."""
    mp = pytest.MonkeyPatch()
    project = kafka_project(tmp_path_factory.mktemp("stream"), kafka_broker, "transactions-e2e", mp)
    kafka_broker.create_topic(project.topic, partitions=3)
    result = _produce_cli(
        "--topic", project.topic, *SIMULATOR_ARGS, servers=kafka_broker.bootstrap, cwd=project.path
    )
    yield project, result
    mp.undo()


def test_producer_cli_reports_every_message_acknowledged(streamed, kafka_broker):
    project, result = streamed
    assert result.returncode == 0, result.stderr
    assert "43465 of 43465 messages acknowledged by topic 'transactions-e2e'" in result.stderr
    assert (
        f"43465 of 43465 messages acknowledged by topic '{project.labels_topic}'" in result.stderr
    )
    ends = kafka_broker.end_offsets(project.topic)
    assert len(ends) == 3 and sum(ends.values()) == 43465


def test_transactions_carry_no_label_and_labels_come_late_keyed_alike(streamed, kafka_broker):
    project, _ = streamed
    transactions = kafka_broker.read_all(project.topic)
    labels = kafka_broker.read_all(project.labels_topic)
    assert len(labels) == len(transactions) == 43465
    sample = [orjson.loads(r.value) for r in transactions[:2000]]
    assert not any(schema.LABEL in m or "fraud_scenario" in m for m in sample)
    key_of = {orjson.loads(r.value)[schema.TRANSACTION_ID]: r.key for r in transactions}
    delays = []
    for record in labels:
        message = orjson.loads(record.value)
        assert set(message) == set(schema.LABEL_COLUMNS)
        assert record.key == key_of[message[schema.TRANSACTION_ID]]
        delays.append(
            pd.Timestamp(message[schema.LABEL_TIMESTAMP]) - pd.Timestamp(message[schema.TIMESTAMP])
        )
    assert min(delays) >= pd.Timedelta("1D") and max(delays) <= pd.Timedelta("60D")


def test_ingestion_persists_every_transaction_once_and_commits_after(streamed, kafka_broker):
    project, _ = streamed
    assert kafka_broker.committed(project.group, project.topic) == {}
    project.run("ingestion")
    validated = project.validated()
    assert len(validated) == 43465 and validated["transaction_id"].is_unique
    assert len(project.quarantined()) == 0
    assert kafka_broker.committed(project.group, project.topic) == kafka_broker.end_offsets(
        project.topic
    )
    # The rows came without labels; the training data has them from the label topic.
    assert validated[schema.LABEL].isna().all()
    assert kafka_broker.committed(project.group, project.labels_topic) == (
        kafka_broker.end_offsets(project.labels_topic)
    )
    labelled = project.labelled()
    assert len(labelled) == 43465 and labelled[schema.LABEL].notna().all()
    label_of = project.labels().set_index(schema.TRANSACTION_ID)[schema.LABEL]
    assert len(label_of) == 43465
    joined = label_of.loc[labelled[schema.TRANSACTION_ID]].to_numpy()
    assert (labelled[schema.LABEL].to_numpy() == joined).all()
    # Nothing new: the second run reads nothing, yet the ingested history is intact.
    project.run("ingestion")
    assert len(project.validated()) == 43465
    assert len(project.batches()) == 1


@pytest.mark.slow
def test_training_flow_runs_from_kafka_data(streamed, kafka_broker):
    project, _ = streamed
    ingested = sum(kafka_broker.committed(project.group, project.topic).values())
    project.run("train_and_promote", SMALL_RUN)
    # The quality gate judges the batch this run consumed (what earlier runs did not
    # ingest); the training read the whole validated history.
    report = json.loads((project.path / "data/08_reporting/data_quality_report.json").read_text())
    assert report["rows_in"] == 43465 - ingested
    features = pd.read_parquet(project.path / "data/04_feature/transaction_features.parquet")
    assert len(features) == 43465
    champion = MlflowClient().get_model_version_by_alias("fraud-detection", "champion")
    assert MlflowClient().get_run(champion.run_id).data.tags["promotion.decision"] == "promoted"


def test_producer_cli_sends_a_mapped_file(kafka_broker, tmp_path):
    source = make_transactions(n=500).rename(
        columns={"transaction_id": "TX_ID", "customer_id": "CARD", "amount": "TX_AMOUNT"}
    )
    path = tmp_path / "handbook_like.csv"
    source.to_csv(path, index=False)
    result = _produce_cli(
        "--file",
        str(path),
        "--topic",
        "file-source",
        "--column-mapping",
        "transaction_id=TX_ID,customer_id=CARD,amount=TX_AMOUNT",
        servers=kafka_broker.bootstrap,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert result.returncode == 0, result.stderr
    frame = KafkaDataset(
        topic="file-source", bootstrap_servers=kafka_broker.bootstrap, group_id="file-check"
    ).load()
    assert sorted(frame["transaction_id"]) == sorted(source["TX_ID"])
    records = kafka_broker.read_all("file-source")
    assert {r.key.decode() for r in records} == set(source["CARD"])


# ------------------------------------------------------------ dead letters --


POISON = {
    b"{not json": "bad_json",
    b"": "bad_json",
    None: "empty_message",
    b"[1, 2, 3]": "not_a_json_object",
    orjson.dumps(
        {
            "transaction_id": "P1",
            "timestamp": "2025-01-02T00:00:00",
            "customer_id": "C1",
            "terminal_id": "M1",
            "amount": "lots",
        }
    ): "bad_type_amount",
    orjson.dumps(
        {
            "transaction_id": "P2",
            "timestamp": "not a time",
            "customer_id": "C1",
            "terminal_id": "M1",
            "amount": 1.0,
        }
    ): "bad_type_timestamp",
    orjson.dumps(
        {"transaction_id": "P3", "customer_id": "C1", "amount": 1.0}
    ): "missing_timestamp;missing_terminal_id",
    orjson.dumps(
        {
            "transaction_id": "P4",
            "timestamp": "2025-01-02T00:00:00",
            "customer_id": ["C1"],
            "terminal_id": "M1",
            "amount": 1.0,
            "is_fraud": 7,
        }
    ): "bad_type_customer_id;bad_type_is_fraud",
}


def test_poison_messages_are_dead_lettered_and_every_message_is_accounted_for(
    kafka_broker, tmp_path, monkeypatch
):
    project = kafka_project(tmp_path, kafka_broker, "transactions-poison", monkeypatch)
    good = make_transactions(n=2000, days=40, seed=3)
    from fraud_detection.streaming.messages import encode_transactions

    values = encode_transactions(good)
    mixed: list[bytes | None] = []
    for i, value in enumerate(values):
        mixed.append(value)
        if i % 250 == 0 and i // 250 < len(POISON):
            mixed.append(list(POISON)[i // 250])
    kafka_broker.produce_raw(project.topic, mixed)

    project.run("ingestion")

    persisted = len(project.validated()) + len(project.quarantined())
    dead = kafka_broker.read_all(project.dead_letter_topic)
    assert persisted == len(good) == len(project.validated())
    assert len(dead) == len(POISON)
    assert len(mixed) == persisted + len(dead)
    for record in dead:
        headers = {k: v.decode() for k, v in record.headers}
        expected = POISON[record.value]
        assert headers["dlq.reason"].split(":")[0] == expected
        assert headers["dlq.source.topic"] == project.topic
        assert mixed[int(headers["dlq.source.offset"])] == record.value
    assert kafka_broker.committed(project.group, project.topic) == {0: len(mixed)}


# ------------------------------------------------------------------ crashes --


def test_killed_between_consume_and_persist_then_rerun_loses_and_doubles_nothing(
    kafka_broker, tmp_path, monkeypatch
):
    project = kafka_project(tmp_path, kafka_broker, "transactions-kill", monkeypatch)
    frame = make_transactions(n=3000, days=40, seed=5)
    assert kafka_broker.produce(project.topic, frame).ok
    # A process that consumed the whole batch through the dataset, then died (SIGKILL).
    crash = (
        "import os, signal, sys\n"
        "from fraud_detection.datasets.kafka_dataset import KafkaDataset\n"
        "ds = KafkaDataset(topic=sys.argv[1], bootstrap_servers=sys.argv[2], "
        "group_id=sys.argv[3])\n"
        "assert len(ds.load()) == 3000\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run(
        [sys.executable, "-c", crash, project.topic, kafka_broker.bootstrap, project.group],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert kafka_broker.committed(project.group, project.topic) == {}

    project.run("ingestion")
    validated = project.validated()
    assert sorted(validated["transaction_id"]) == sorted(frame["transaction_id"])
    assert kafka_broker.committed(project.group, project.topic) == {0: 3000}


def test_failed_persist_commits_nothing_and_the_rerun_reads_the_batch_again(
    kafka_broker, tmp_path, monkeypatch
):
    project = kafka_project(tmp_path, kafka_broker, "transactions-persist", monkeypatch)
    frame = make_transactions(n=1500, days=40, seed=6)
    assert kafka_broker.produce(project.topic, frame).ok
    batches = project.path / "data/02_intermediate/validated_batches"
    batches.parent.mkdir(parents=True, exist_ok=True)
    batches.write_text("a file where the batch folder should be")  # the save fails

    with pytest.raises(Exception, match="validated_batches"):
        project.run("ingestion")
    assert kafka_broker.committed(project.group, project.topic) == {}

    batches.unlink()
    project.run("ingestion")
    assert sorted(project.validated()["transaction_id"]) == sorted(frame["transaction_id"])
    assert kafka_broker.committed(project.group, project.topic) == {0: 1500}


def test_batch_persisted_but_not_committed_is_not_doubled(kafka_broker, tmp_path, monkeypatch):
    project = kafka_project(tmp_path, kafka_broker, "transactions-uncommitted", monkeypatch)
    frame = make_transactions(n=1200, days=40, seed=8)
    assert kafka_broker.produce(project.topic, frame.iloc[:1000]).ok
    # The batch reached storage, then the process died before committing.
    dataset = KafkaDataset(
        topic=project.topic, bootstrap_servers=kafka_broker.bootstrap, group_id=project.group
    )
    ParquetBatchesDataset(
        path=str(project.path / "data/02_intermediate/validated_batches"),
        unique_key="transaction_id",
    ).save(dataset.load())
    assert kafka_broker.produce(project.topic, frame.iloc[1000:]).ok

    project.run("ingestion")  # reads the 1000 again, plus the 200 new ones
    validated = project.validated()
    assert len(validated) == 1200 and validated["transaction_id"].is_unique
    assert len(project.quarantined()) == 0
    assert len(project.batches()) == 2
    assert kafka_broker.committed(project.group, project.topic) == {0: 1200}


def test_the_quality_gate_judges_each_new_batch_before_its_offsets_are_committed(
    kafka_broker, tmp_path, monkeypatch
):
    project = kafka_project(tmp_path, kafka_broker, "transactions-gate", monkeypatch)
    frame = make_transactions(n=1600, days=40, seed=13)
    bad = frame.iloc[:1100].copy()
    bad.loc[bad.index[::11], schema.AMOUNT] = -1.0  # 100 of 1100 rows: 9% > 5%
    assert kafka_broker.produce(project.topic, bad).ok

    with pytest.raises(Exception, match="failed validation, above the limit"):
        project.run("ingestion")
    assert kafka_broker.committed(project.group, project.topic) == {}  # judged before commit
    assert project.batches() == [] and len(project.quarantined()) == 100

    # Let this batch through once; the rerun reads the same messages again.
    project.run("ingestion", runtime_params={"ingestion": {"max_invalid_share": 0.2}})
    assert kafka_broker.committed(project.group, project.topic) == {0: 1100}
    assert len(project.validated()) == 1000
    assert len(project.quarantined()) == 100  # the rerun's quarantine is not added twice

    # The history is now 9% invalid; a clean batch still passes, as only it is judged.
    assert kafka_broker.produce(project.topic, frame.iloc[1100:]).ok
    project.run("ingestion")
    assert kafka_broker.committed(project.group, project.topic) == {0: 1600}
    assert len(project.validated()) == 1500 and project.validated()["transaction_id"].is_unique
    report = json.loads((project.path / "data/08_reporting/data_quality_report.json").read_text())
    assert report["rows_in"] == 500 and report["rows_quarantined"] == 0


# ----------------------------------------------------------- broker failures --


def test_stopping_the_broker_mid_run_fails_clearly_and_commits_nothing(tmp_path, monkeypatch):
    broker = start_broker(tmp_path / "own-broker")  # stopped on purpose: not the shared one
    try:
        (tmp_path / "p").mkdir()
        project = kafka_project(tmp_path / "p", broker, "transactions-outage", monkeypatch)
        frame = make_transactions(n=20_000, days=40, seed=9)
        assert broker.produce(project.topic, frame).ok
        catalog = project.path / "conf/kafka/catalog.yml"
        config = yaml.safe_load(catalog.read_text())
        # Small fetches make the batch take seconds; fail fast once the broker is gone.
        config["raw_transactions"]["load_args"].update(
            max_partition_fetch_bytes=4096,
            fetch_max_bytes=4096,
            max_poll_records=50,
            stall_timeout_s=8,
            request_timeout_ms=5000,
            bootstrap_timeout_ms=3000,
            progress_every_s=0.2,
        )
        catalog.write_text(yaml.safe_dump(config))
        kedro = Path(sys.executable).with_name("kedro")
        # The test reads the progress lines as a log shipper would: JSON lines on stdout
        # (the terminal's rich handler wraps long lines).
        env = {**os.environ, "KEDRO_LOGGING_CONFIG": str(project.path / "conf/logging-json.yml")}
        run = subprocess.Popen(
            [str(kedro), "run", "--env", "kafka", "--pipelines", "ingestion"],
            cwd=project.path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        output: list[str] = []
        for line in run.stdout:
            output.append(line)
            if "messages from 'transactions-outage' so far" in line:  # mid-batch
                break
        broker.stop()
        started = time.monotonic()
        output.extend(run.stdout)
        assert run.wait(timeout=120) != 0
        text = "".join(output)
        assert time.monotonic() - started < 90
        assert broker.bootstrap in text, text[-3000:]
        assert "Nothing was committed" in text, text[-3000:]

        broker.start()
        assert broker.committed(project.group, project.topic) == {}
        project.run("ingestion")
        assert sorted(project.validated()["transaction_id"]) == sorted(frame["transaction_id"])
        assert broker.committed(project.group, project.topic) == {0: 20_000}
    finally:
        broker.stop()


def test_unreachable_broker_fails_before_any_node_naming_the_servers(
    tmp_path, monkeypatch, kafka_broker
):
    project = kafka_project(tmp_path, kafka_broker, "transactions-down", monkeypatch)
    servers = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", servers)
    validation = project.path / "conf/kafka/validation.yml"
    validation.write_text(validation.read_text().replace("timeout_s: 10", "timeout_s: 2"))
    started = time.monotonic()
    with pytest.raises(
        StartupValidationError,
        match=f"(?s)environment 'kafka'.*No Kafka broker answered at {servers} within 2s",
    ):
        project.run("train_and_promote")
    assert time.monotonic() - started < 20
    assert not list((project.path / "data").rglob("*.parquet"))


# -------------------------------------------------- the default pipeline --


def test_default_pipeline_in_the_kafka_env_streams_simulated_transactions_through_the_topic(
    kafka_broker, tmp_path, monkeypatch
):
    project = kafka_project(tmp_path, kafka_broker, "transactions-default", monkeypatch)
    params = {"simulation": {"n_days": 10, "n_customers": 100, "n_terminals": 200, "seed": 11}}
    project.run("__default__", params, to_outputs=["labelled_transactions"])
    ends = kafka_broker.end_offsets(project.topic)
    validated = project.validated()
    assert len(validated) == sum(ends.values()) > 0
    # The simulation's labels went to their own topic. Reading them does not wait for the
    # simulation node (in production labels come later anyway): the next run at the
    # latest joins every one of them by id.
    assert sum(kafka_broker.end_offsets(project.labels_topic).values()) == len(validated)
    assert validated[schema.LABEL].isna().all()
    project.run("ingestion")
    labelled = project.labelled()
    assert len(labelled) == len(validated) and labelled[schema.LABEL].notna().all()
    assert kafka_broker.committed(project.group, project.topic) == ends
    assert list(validated.columns[: len(schema.COLUMN_NAMES)]) == list(schema.COLUMN_NAMES)


# ------------------------------------------------------------ late labels --


def test_a_label_arriving_after_its_transaction_was_ingested_still_reaches_training_data(
    kafka_broker, tmp_path, monkeypatch
):
    project = kafka_project(tmp_path, kafka_broker, "transactions-late-labels", monkeypatch)
    frame = make_transactions(n=300, days=20, seed=4)
    labels = schedule_labels(
        frame, parse_delay({"distribution": "uniform", "min": "1D", "max": "60D"}), 1
    )
    kafka_broker.create_topic(project.topic)
    assert kafka_broker.produce(project.topic, strip_labels(frame)).ok
    # No label yet (the label topic does not even exist): the rows are ingested unlabelled.
    project.run("ingestion")
    assert len(project.validated()) == 300
    assert project.labelled()[schema.LABEL].isna().all()
    # Weeks later the labels arrive (one of them twice, with another value: the first
    # counts); the next run adds them to the rows ingested before.
    assert kafka_broker.produce(project.labels_topic, labels.iloc[:200]).ok
    repeat = labels.iloc[[0]].assign(**{schema.LABEL: 1 - int(labels[schema.LABEL].iloc[0])})
    assert kafka_broker.produce(project.labels_topic, repeat).ok
    project.run("ingestion")
    labelled = project.labelled().set_index(schema.TRANSACTION_ID)
    expected = labels.iloc[:200].set_index(schema.TRANSACTION_ID)[schema.LABEL]
    assert labelled[schema.LABEL].notna().sum() == 200
    assert (labelled.loc[expected.index, schema.LABEL].to_numpy() == expected.to_numpy()).all()
    assert len(project.validated()) == 300  # the transactions are not read again
    dead = kafka_broker.read_all(f"{project.labels_topic}.dlq")
    assert len(dead) == 1
    assert dict(dead[0].headers)["dlq.reason"].startswith(b"duplicate_transaction_id")
    # The rest arrive; a run with nothing new on the transactions topic labels them too.
    assert kafka_broker.produce(project.labels_topic, labels.iloc[200:]).ok
    project.run("ingestion")
    assert project.labelled()[schema.LABEL].notna().sum() == 300
    assert kafka_broker.committed(project.group, project.labels_topic) == (
        kafka_broker.end_offsets(project.labels_topic)
    )
