"""XGBoost trained in Spark (``training.engine: spark``): the driver-side model scores
as the Spark model does, learns the planted signal, and joins the other candidates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from fraud_detection.features import create_features
from fraud_detection.pipelines.training.nodes import (
    TrainingParams,
    choose_thresholds,
    merge_candidates,
    select_model,
    train_spark_candidates,
)
from fraud_detection.splits import split_out_of_time
from tests.conftest import base_parameters, make_transactions

pytestmark = pytest.mark.spark

FEATURES = base_parameters("features")
SPLIT = {**base_parameters("split"), "n_folds": 2}
TRAINING = {
    **base_parameters("training"),
    "engine": "spark",
    "spark": {
        **base_parameters("training")["spark"],
        "params": {"n_estimators": 30, "max_depth": 3, "learning_rate": 0.2, "random_state": 0},
    },
}


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    """Frauds happen at night and are somewhat larger: an amount-only model sees half
    of the signal. Many customers, so that some stay clean (known-compromised
    customers leave the validation rows)."""
    n = 5000
    tx = make_transactions(n=n, days=70, seed=5, fraud_rate=0.0)
    rng = np.random.default_rng(5)
    tx["customer_id"] = [f"C{i}" for i in rng.integers(0, 1500, n)]
    night = tx["timestamp"].dt.hour < 6
    fraud = night & (rng.uniform(size=n) < 0.3)
    tx.loc[fraud, "amount"] = (tx.loc[fraud, "amount"] * 1.5 + 20).round(2)
    tx["is_fraud"] = fraud.astype("int64")
    return create_features(tx, FEATURES)


@pytest.fixture(scope="module")
def spark_table(spark, features, tmp_path_factory):
    path = tmp_path_factory.mktemp("xgb") / "features.parquet"
    features.to_parquet(path, coerce_timestamps="us", allow_truncated_timestamps=True)
    return spark.read.parquet(str(path))


@pytest.fixture(scope="module")
def trained(features, spark_table):
    _, _, plan = split_out_of_time(features, SPLIT)
    return plan, train_spark_candidates(spark_table, plan, TRAINING, FEATURES)


def test_driver_model_scores_equal_the_spark_model(spark, features, spark_table, trained):
    from fraud_detection.spark import xgboost_training as sx

    plan, out = trained
    name = TRAINING["spark"]["name"]
    entry = out["trained_candidates"][name]
    inputs = entry["inputs"]
    # The driver model against a Spark model fitted on the same rows with the same
    # settings (XGBoost is deterministic given data and seed).
    p = sx.SparkXGBoostParams.from_dict(TRAINING["spark"])
    table = sx._prepared(spark_table, inputs)
    final = sx._window(table, plan["train_start"], plan["train_end"])
    model, _ = sx._fit(final, p)
    spark_scores = (
        sx.spark_scores(model, table)
        .select("transaction_id", "score")
        .toPandas()
        .set_index("transaction_id")["score"]
    )
    rows = features.set_index("transaction_id").loc[spark_scores.index].reset_index()
    driver = entry["pipeline"].predict_proba(rows[inputs])[:, 1]
    np.testing.assert_allclose(driver, spark_scores.to_numpy(), atol=1e-6, rtol=0)
    assert entry["pipeline"].named_steps["select"].selected_features_ == inputs
    assert "merchant_category" not in inputs  # categoricals are left out


def test_spark_candidate_beats_an_amount_only_baseline_on_held_out_rows(features, trained):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    plan, out = trained
    entry = out["trained_candidates"][TRAINING["spark"]["name"]]
    dev, test, _ = split_out_of_time(features, SPLIT)
    train = dev[
        (dev["timestamp"] >= pd.Timestamp(plan["train_start"]))
        & (dev["timestamp"] < pd.Timestamp(plan["train_end"]))
    ]
    baseline = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        train[["amount"]], train["is_fraud"].astype(int)
    )
    y = test["is_fraud"].astype(int)
    ap_model = average_precision_score(
        y, entry["pipeline"].predict_proba(test[entry["inputs"]])[:, 1]
    )
    ap_base = average_precision_score(y, baseline.predict_proba(test[["amount"]])[:, 1])
    assert ap_model > ap_base


def test_validation_rows_are_fold_zero_only_and_the_candidate_joins_selection(features, trained):
    plan, out = trained
    name = TRAINING["spark"]["name"]
    fold = plan["folds"][0]
    valid = out["validation_predictions"]
    ts = features.set_index("transaction_id").loc[valid["transaction_id"], "timestamp"]
    assert (ts >= pd.Timestamp(fold["valid_start"])).all()
    assert (ts < pd.Timestamp(fold["valid_end"])).all()
    assert (valid["candidate"] == name).all() and (valid["fold"] == 0).all()
    expected_ap = average_precision_score(valid["label"], valid["score"])
    assert out["search_results"][name]["validation_average_precision"] == pytest.approx(expected_ap)
    results, predictions, candidates = merge_candidates({}, valid.iloc[:0], {}, out)
    thresholds = choose_thresholds(predictions, TRAINING)
    selection, selected = select_model(results, candidates, thresholds)
    assert selection["selected"] == name
    assert selected == out["trained_candidates"][name]["inputs"]


def test_engine_is_validated_and_pandas_adds_nothing(features):
    with pytest.raises(ValueError, match="engine.*'dask'"):
        TrainingParams.from_dict({**TRAINING, "engine": "dask"})
    assert train_spark_candidates(features, {}, {**TRAINING, "engine": "pandas"}, FEATURES) == {}
    with pytest.raises(ValueError, match="kedro run --env spark"):
        train_spark_candidates(features, {}, TRAINING, FEATURES)
    # Outside the spark environment the table is absent (the catalog loads None).
    with pytest.raises(ValueError, match="kedro run --env spark"):
        train_spark_candidates(None, {}, TRAINING, FEATURES)
    with pytest.raises(ValueError, match="num_workers"):
        train_spark_candidates(
            features, {}, {**TRAINING, "spark": {**TRAINING["spark"], "num_workers": 0}}, FEATURES
        )


def test_packaged_spark_candidate_loads_in_mlflow_and_the_scorer(features, trained, tmp_path):
    import mlflow.pyfunc

    from fraud_detection.pipelines.training.nodes import package_model
    from fraud_detection.scoring.champion import LoadedModel

    plan, out = trained
    name = TRAINING["spark"]["name"]
    selection = {"selected": name, "threshold": 0.5}
    model = package_model(out["trained_candidates"], selection, features, plan)
    assert model.training_window == {"start": plan["train_start"], "end": plan["train_end"]}
    mlflow.pyfunc.save_model(
        str(tmp_path / "model"), python_model=model, input_example=model.input_example
    )
    loaded = LoadedModel(name, "1", None, mlflow.pyfunc.load_model(str(tmp_path / "model")))
    rows = features.tail(50)
    expected = out["trained_candidates"][name]["pipeline"].predict_proba(
        rows[out["trained_candidates"][name]["inputs"]]
    )[:, 1]
    scored = loaded.predict(rows)
    np.testing.assert_allclose(scored["score"], expected, atol=1e-12)
    assert (scored["decision"] == (expected >= 0.5)).all()
