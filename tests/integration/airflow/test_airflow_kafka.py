"""The DAG in real Airflow 3 with the kafka environment: transactions (without labels)
and their labels (on their own topic, as chargebacks arrive) produced to a real broker
(scripts/kafka.sh) are ingested by the DAG's first node task, the offsets of both are
committed once the batch is persisted, and the model trained on them is promoted in the
DAG run's single MLflow run."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from fraud_detection.streaming.labels import parse_delay, schedule_labels, strip_labels
from tests.e2e.test_default_run import SMALL_RUN, make_project, run
from tests.integration.airflow.conftest import DAG_ID, DAG_PARAMS, start_airflow
from tests.integration.kafka.conftest import kafka_broker  # noqa: F401 (the broker fixture)

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

TOPIC = "transactions-airflow"
LABELS_TOPIC = "transactions-airflow-labels"


@pytest.fixture(scope="module")
def produced(kafka_broker, tmp_path_factory):
    """A project copy and its simulated transactions, sent to a 3-partition topic
    without labels; the labels go to their own topic."""
    project = make_project(tmp_path_factory.mktemp("airflow-kafka"))
    mp = pytest.MonkeyPatch()
    mp.chdir(project)
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'seed.db'}")
    run(project, SMALL_RUN, pipeline="simulation")
    mp.undo()
    frame = pd.read_parquet(project / "data/01_raw/transactions.parquet")
    (project / "data/01_raw/transactions.parquet").unlink()  # the DAG must read Kafka
    kafka_broker.create_topic(TOPIC, partitions=3)
    assert kafka_broker.produce(TOPIC, strip_labels(frame)).ok
    delay = parse_delay({"distribution": "uniform", "min": "1D", "max": "60D"})
    kafka_broker.create_topic(LABELS_TOPIC, partitions=3)
    assert kafka_broker.produce(LABELS_TOPIC, schedule_labels(frame, delay, 7)).ok
    return project, frame


def test_dag_trains_and_promotes_from_kafka(
    generated_dags, kafka_broker, produced, tmp_path_factory
):
    project, frame = produced
    group = f"{TOPIC}-ingestion"
    airflow = start_airflow(
        tmp_path_factory.mktemp("airflow-kafka-home"),
        generated_dags,
        project,
        kedro_env="kafka",
        extra_env={
            "KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap,
            "KAFKA_TRANSACTIONS_TOPIC": TOPIC,
            "KAFKA_LABELS_TOPIC": LABELS_TOPIC,
            "KAFKA_CONSUMER_GROUP": group,
        },
    )
    result = airflow(
        "dags", "test", DAG_ID, "2026-01-01", "--conf", json.dumps({"kedro_params": DAG_PARAMS})
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    (dag_run,) = airflow.json("dags", "list-runs", DAG_ID)
    assert dag_run["state"] == "success"
    states = airflow.task_states(dag_run["run_id"])
    assert states["ingestion"] == "success" and states["champion_promoted"] == "success"

    quality = json.loads((project / "data/08_reporting/data_quality_report.json").read_text())
    assert quality["rows_in"] == len(frame)
    assert kafka_broker.committed(group, TOPIC) == kafka_broker.end_offsets(TOPIC)
    assert kafka_broker.committed(group, LABELS_TOPIC) == kafka_broker.end_offsets(LABELS_TOPIC)
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("airflow-dag").experiment_id])
    assert len(runs) == 1 and runs[0].data.tags["kedro.env"] == "kafka"
    assert (
        client.get_model_version_by_alias("fraud-detection", "champion").run_id
        == runs[0].info.run_id
    )
