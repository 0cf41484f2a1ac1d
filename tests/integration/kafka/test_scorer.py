"""The real-time scorer against a real broker: a recorded day streamed through
``fraud-detection-score`` gets the features of ``create_features`` and the scores of
the batch model, at least once across a crash, with malformed messages dead-lettered,
labels only from the label topic (sent apart and late, as the producer sends them), and
the model reloaded when the alias moves; predictions sent with either Kafka client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import orjson
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression
from xgboost import XGBClassifier

from fraud_detection import schema
from fraud_detection.features import (
    create_features,
    feature_columns,
)
from fraud_detection.model import FraudModel, build_model_pipeline
from fraud_detection.simulator import simulate_transactions
from fraud_detection.streaming.labels import (
    LabelParams,
    attach_labels,
    labels_known_at,
    schedule_labels,
    strip_labels,
)
from fraud_detection.streaming.messages import encode_labels
from tests.conftest import PROJECT_ROOT, assert_columns_equal, base_parameters

pytestmark = pytest.mark.integration

MODEL = "fraud-detection"
FEATURES = yaml.safe_load(
    (PROJECT_ROOT / "conf/base/parameters_feature_engineering.yml").read_text()
)["features"]
TOPICS = {
    "tx": "scorer-tx",
    "labels": "scorer-labels",
    "predictions": "scorer-predictions",
    "features": "scorer-features",
    "dlq": "scorer-tx.dlq",
    "shadow": "scorer-shadow",
}
POISON = b'{"transaction_id": "BAD1", "amount": "lots"}'


def register(features: pd.DataFrame, classifier, tracking_uri: str, alias: str = "champion") -> str:
    """Fits a small model on labelled feature rows, registers it, gives it ``alias``."""
    numeric, categorical = feature_columns(features)
    pipeline = build_model_pipeline(classifier, numeric, categorical, {"mi_sample_size": 3000})
    pipeline.fit(features[numeric + categorical], features[schema.LABEL].astype(int))
    model = FraudModel(pipeline, 0.3, numeric + categorical, type(classifier).__name__)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("scorer-test")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=model,
            registered_model_name=MODEL,
            input_example=features[numeric + categorical].head(3),
        )
    MlflowClient().set_registered_model_alias(MODEL, alias, info.registered_model_version)
    return str(info.registered_model_version)


class Scorer:
    """``fraud-detection-score`` as a subprocess, its log in a file."""

    def __init__(self, broker, tracking_uri: str, log: Path, *extra: str):
        script = Path(sys.executable).with_name("fraud-detection-score")
        command = (
            [str(script)] if script.exists() else [sys.executable, "-m", "fraud_detection.scoring"]
        )
        self.log = log
        self.offset = log.stat().st_size if log.exists() else 0
        args = [
            "--bootstrap-servers",
            broker.bootstrap,
            "--transactions-topic",
            TOPICS["tx"],
            "--labels-topic",
            TOPICS["labels"],
            "--predictions-topic",
            TOPICS["predictions"],
            "--dead-letter-topic",
            TOPICS["dlq"],
            "--features-topic",
            TOPICS["features"],
            "--group-id",
            "scorer-test",
            "--model-uri",
            f"models:/{MODEL}@champion",
            "--model-check-interval",
            "1",
            "--status-every",
            "5",
            "--project-path",
            str(PROJECT_ROOT),
            *extra,
        ]
        env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
        with log.open("a") as out:
            self.process = subprocess.Popen(
                [*command, *args], stdout=out, stderr=subprocess.STDOUT, env=env
            )
        self.wait_for("Scoring from offsets", timeout=180)

    def text(self) -> str:
        return self.log.read_text()[self.offset :]

    def wait_for(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if self.process.poll() is not None:
                pytest.fail(
                    f"the scorer exited with {self.process.returncode}:\n{self.text()[-4000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"'{needle}' not in the scorer's log after {timeout}s:\n{self.text()[-4000:]}"
                )
            time.sleep(0.2)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=120)


def records_by_id(
    broker, topic: str, expected: set[str], timeout: float = 180
) -> dict[str, list[dict]]:
    """Every message of ``topic`` by transaction id, once ``expected`` are all there."""
    deadline = time.monotonic() + timeout
    while True:
        out: dict[str, list[dict]] = {}
        for record in broker.read_all(topic):
            message = orjson.loads(record.value)
            out.setdefault(message["transaction_id"], []).append(message)
        if expected <= set(out) or time.monotonic() > deadline:
            return out
        time.sleep(0.5)


@pytest.fixture(scope="module")
def scored(kafka_broker, tmp_path_factory):
    """A recorded day streamed through the scorer, with a crash in the middle."""
    root = tmp_path_factory.mktemp("scorer")
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    transactions = simulate_transactions(
        base_parameters("simulation", n_days=40, n_customers=250, n_terminals=500, seed=5)
    )
    day_start = transactions[schema.TIMESTAMP].min().normalize() + pd.Timedelta("39D")
    history = transactions[transactions[schema.TIMESTAMP] < day_start]
    day = transactions[transactions[schema.TIMESTAMP] >= day_start]
    # Each label comes 1 to 60 days after its transaction (params:labels): only the
    # labels known when the day starts reach the scorer before it, on their own topic.
    label_params = LabelParams.from_dict(base_parameters("labels"))
    labels = schedule_labels(history, label_params.delay, label_params.seed)
    known = labels_known_at(labels, day_start)
    assert 0 < len(known) < len(history)
    # What the scorer can serve for the day: the features of the labels known then.
    batch_features = create_features(attach_labels(transactions, known, "topic"), FEATURES)
    training = create_features(transactions, FEATURES)
    version = register(
        training[training[schema.TIMESTAMP] < day_start],
        XGBClassifier(n_estimators=40, max_depth=3, n_jobs=1),
        tracking_uri,
    )

    kafka_broker.create_topic(
        TOPICS["tx"], partitions=1
    )  # one partition: time order is arrival order
    kafka_broker.create_topic(TOPICS["labels"], partitions=1)
    # The transactions without label; the labels known by the day, apart.
    kafka_broker.produce(TOPICS["tx"], strip_labels(history))
    kafka_broker.produce_raw(TOPICS["labels"], encode_labels(known))

    log = root / "scorer.log"
    # First start: the history is replayed into the state, only new messages are scored.
    scorer = Scorer(kafka_broker, tracking_uri, log, "--start-from", "latest")
    first, second = day.iloc[: len(day) // 2], day.iloc[len(day) // 2 :]
    kafka_broker.produce(TOPICS["tx"], strip_labels(first))
    records_by_id(kafka_broker, TOPICS["predictions"], set(first[schema.TRANSACTION_ID]))
    crash_code = scorer.stop(signal.SIGKILL)
    # While it is down: the rest of the day and a malformed message.
    kafka_broker.produce(TOPICS["tx"], strip_labels(second.iloc[:100]))
    kafka_broker.produce_raw(TOPICS["tx"], [POISON])
    kafka_broker.produce(TOPICS["tx"], strip_labels(second.iloc[100:]))
    # A challenger to shadow from the restart on (another XGBoost, not acted upon).
    challenger = register(
        training[training[schema.TIMESTAMP] < day_start],
        XGBClassifier(n_estimators=20, max_depth=2, n_jobs=1),
        tracking_uri,
        alias="challenger",
    )
    # The restart sends with librdkafka (--producer-client): what follows (the rest of the
    # day, the dead letter, the alias move, the commits at SIGTERM) runs on that client.
    scorer = Scorer(
        kafka_broker,
        tracking_uri,
        log,
        "--producer-client",
        "confluent-kafka",
        "--shadow-model-uri",
        f"models:/{MODEL}@challenger",
        "--shadow-topic",
        TOPICS["shadow"],
    )
    predictions = records_by_id(
        kafka_broker, TOPICS["predictions"], set(day[schema.TRANSACTION_ID])
    )

    # The alias moves: the scorer picks the new version up without a restart.
    new_version = register(
        training[training[schema.TIMESTAMP] < day_start],
        LogisticRegression(max_iter=300),
        tracking_uri,
    )
    scorer.wait_for(f"now serving {new_version}", timeout=60)
    extra = make_extra(day)
    kafka_broker.produce(TOPICS["tx"], strip_labels(extra))
    after_move = records_by_id(
        kafka_broker, TOPICS["predictions"], set(extra[schema.TRANSACTION_ID])
    )
    exit_code = scorer.stop(signal.SIGTERM)
    shadow = records_by_id(kafka_broker, TOPICS["shadow"], set(extra[schema.TRANSACTION_ID]))
    return {
        "day": day,
        "batch_features": batch_features,
        "predictions": predictions,
        "after_move": after_move,
        "extra": extra,
        "version": version,
        "new_version": new_version,
        "challenger": challenger,
        "second": second,
        "shadow": shadow,
        "crash_code": crash_code,
        "exit_code": exit_code,
        "log": scorer.text(),
        "tracking_uri": tracking_uri,
        "labels_sent": len(known),
    }


def make_extra(day: pd.DataFrame) -> pd.DataFrame:
    """A few transactions after the day, with new ids."""
    extra = day.tail(5).copy()
    extra[schema.TRANSACTION_ID] = [f"X{i}" for i in range(len(extra))]
    extra[schema.TIMESTAMP] = extra[schema.TIMESTAMP] + pd.Timedelta("1h")
    return extra


def test_every_transaction_of_the_day_is_scored_at_least_once_across_a_crash(scored):
    day_ids = set(scored["day"][schema.TRANSACTION_ID])
    assert scored["crash_code"] == -signal.SIGKILL
    assert day_ids <= set(scored["predictions"])
    message = scored["predictions"][next(iter(day_ids))][0]
    assert set(message) >= {
        "transaction_id",
        "score",
        "decision",
        "model_name",
        "model_version",
        "processing_latency_ms",
    }
    assert message["model_version"] == scored["version"] and message["model_name"] == MODEL
    assert message["processing_latency_ms"] >= 0
    # Reason codes on alerts only (the default), through the real broker.
    messages = [m for ms in scored["predictions"].values() for m in ms]
    alerts = [m for m in messages if m["decision"] == 1]
    assert all(m["reasons"] is None for m in messages if m["decision"] == 0)
    assert all(m["reasons"] is not None and len(m["reasons"]) <= 3 for m in alerts), (
        "an alert without its reason codes"
    )


def test_streamed_features_equal_create_features_on_the_same_rows(scored, kafka_broker):
    day_ids = list(scored["day"][schema.TRANSACTION_ID])
    streamed = records_by_id(kafka_broker, TOPICS["features"], set(day_ids))
    batch = scored["batch_features"].set_index(schema.TRANSACTION_ID).loc[day_ids]
    numeric, categorical = feature_columns(scored["batch_features"])
    for tid in day_ids:
        copies = streamed[tid]
        assert all(copy == copies[0] for copy in copies), (
            tid
        )  # re-scored after the crash: same features
    served = pd.DataFrame([streamed[tid][0] for tid in day_ids]).set_index(schema.TRANSACTION_ID)
    assert_columns_equal(served, batch, numeric, categorical)


def test_streamed_scores_equal_the_batch_model_scores(scored):
    day_ids = list(scored["day"][schema.TRANSACTION_ID])
    mlflow.set_tracking_uri(scored["tracking_uri"])
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}/{scored['version']}")
    batch = scored["batch_features"].set_index(schema.TRANSACTION_ID).loc[day_ids].reset_index()
    expected = model.predict(batch)
    served = [scored["predictions"][tid][-1] for tid in day_ids]
    np.testing.assert_allclose(
        [m["score"] for m in served], expected["score"].to_numpy(), rtol=1e-9, atol=1e-9
    )
    assert [m["decision"] for m in served] == expected["decision"].tolist()


def test_malformed_message_goes_to_the_dead_letter_topic(scored, kafka_broker):
    dead = kafka_broker.read_all(TOPICS["dlq"])
    assert [r.value for r in dead] == [POISON]
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert (
        "bad_type_amount" in headers["dlq.reason"].split(";")
        and headers["dlq.source.topic"] == TOPICS["tx"]
    )


def test_alias_move_is_picked_up_and_sigterm_commits_everything(scored, kafka_broker):
    assert scored["new_version"] != scored["version"]
    for tid in scored["extra"][schema.TRANSACTION_ID]:
        assert scored["after_move"][tid][-1]["model_version"] == scored["new_version"]
    assert scored["exit_code"] == 0
    assert kafka_broker.committed("scorer-test", TOPICS["tx"]) == kafka_broker.end_offsets(
        TOPICS["tx"]
    )
    assert kafka_broker.committed("scorer-test", TOPICS["labels"]) == kafka_broker.end_offsets(
        TOPICS["labels"]
    )
    assert "Feature state rebuilt" in scored["log"]
    assert sum(kafka_broker.end_offsets(TOPICS["labels"]).values()) == scored["labels_sent"]


def test_the_challenger_scores_in_shadow_beside_the_champion(scored):
    """From the restart on, every transaction gets a shadow prediction of the
    ``challenger`` alias on its own topic: the challenger's batch score, next to the
    champion's served score of the same transaction; the champion's stream is the same
    as without it (its scores equal the batch model's: the test above)."""
    mlflow.set_tracking_uri(scored["tracking_uri"])
    challenger = mlflow.pyfunc.load_model(f"models:/{MODEL}/{scored['challenger']}")
    ids = list(scored["second"][schema.TRANSACTION_ID])
    assert set(ids) <= set(scored["shadow"])
    batch = scored["batch_features"].set_index(schema.TRANSACTION_ID).loc[ids].reset_index()
    expected = challenger.predict(batch)["score"].to_numpy()
    for tid, score in zip(ids, expected, strict=True):
        shadow = scored["shadow"][tid][-1]
        assert shadow["model_version"] == scored["challenger"]
        assert shadow["score"] == pytest.approx(score, abs=1e-9)
        served = scored["predictions"][tid][-1]
        assert shadow["champion_score"] == pytest.approx(served["score"], abs=1e-12)
        assert shadow["champion_version"] == served["model_version"]
    # After the champion's alias moved, the shadow compares against the new champion.
    for tid in scored["extra"][schema.TRANSACTION_ID]:
        assert scored["shadow"][tid][-1]["champion_version"] == scored["new_version"]
