"""Your own columns as model inputs: declared source columns, derived distances and the
leakage guard."""

import numpy as np
import pandas as pd
import pytest

from fraud_detection.features import create_features, feature_columns
from fraud_detection.features.source_columns import add_source_columns, source_inputs
from fraud_detection.model_search import fit_candidates, tune_candidates
from fraud_detection.pipelines.feature_engineering.nodes import add_source_columns_node
from fraud_detection.splits import split_out_of_time
from tests.conftest import base_parameters, make_transactions

FEATURES = base_parameters("features")
SOURCE = base_parameters("source_columns")
SPLIT = {**base_parameters("split"), "n_folds": 2, "remove_known_compromised": False}


@pytest.fixture(scope="module")
def table():
    """A bring-your-own table: canonical columns plus customer age, an MCC, home and
    merchant coordinates and the simulator's scenario column."""
    tx = make_transactions(n=3000, days=60, seed=4, fraud_rate=0.05)
    rng = np.random.default_rng(4)
    tx["customer_age"] = rng.integers(18, 90, len(tx)).astype(float)
    tx.loc[::50, "customer_age"] = np.nan
    tx["mcc"] = rng.choice(["5411", "5812", "4829"], len(tx))
    tx["home_x"], tx["home_y"] = rng.uniform(0, 100, len(tx)), rng.uniform(0, 100, len(tx))
    tx["shop_x"], tx["shop_y"] = tx["home_x"] + 3.0, tx["home_y"] + 4.0
    tx["fraud_scenario"] = np.where(tx["is_fraud"] == 1, "stolen_card", "none")
    return tx


def _params(**overrides):
    return {**SOURCE, **overrides}


def _with_sources(table, **overrides):
    return add_source_columns(create_features(table, FEATURES), table, _params(**overrides), None)


def test_declared_columns_and_distance_become_model_inputs(table):
    features = _with_sources(
        table,
        numeric=["customer_age"],
        categorical=["mcc"],
        distances=[
            {
                "name": "home_to_shop",
                "from_columns": ["home_x", "home_y"],
                "to_columns": ["shop_x", "shop_y"],
                "metric": "euclidean",
            }
        ],
    )
    assert np.allclose(features["src_home_to_shop"], 5.0)
    by_id = table.set_index("transaction_id")
    ages = by_id.loc[features["transaction_id"], "customer_age"].to_numpy()
    assert np.array_equal(
        features["src_customer_age"].to_numpy(), np.where(np.isnan(ages), -1.0, ages)
    )
    assert set(features["src_mcc"]) == {"5411", "5812", "4829"}
    numeric, categorical = source_inputs(features)
    assert numeric == ["src_customer_age", "src_home_to_shop"] and categorical == ["src_mcc"]
    assert "src_customer_age" in feature_columns(features)[0]
    # ... and reach the fitted model's inputs.
    dev, _, plan = split_out_of_time(features, SPLIT)
    training = {
        **base_parameters("training"),
        "search": "grid",
        "selection": {"mi_sample_size": 2000, "top_k": None, "max_correlation": 1.0},
        "candidates": {
            "logistic_regression": {
                "classifier": "sklearn.linear_model.LogisticRegression",
                "init": {"max_iter": 300},
                "resampling": ["none"],
                "search_space": {},
            }
        },
    }
    fitted = fit_candidates(dev, plan, tune_candidates(dev, plan, training)[0], training)
    inputs = fitted["logistic_regression"]["inputs"]
    assert {"src_customer_age", "src_home_to_shop", "src_mcc"} <= set(inputs)
    encoded = fitted["logistic_regression"]["pipeline"].named_steps["preprocess"]
    assert any(name.startswith("src_mcc_") for name in encoded.get_feature_names_out())


def test_haversine_distance_is_in_kilometres(table):
    paris_london = table.head(1).assign(lat1=48.8566, lon1=2.3522, lat2=51.5074, lon2=-0.1278)
    spec = {"name": "d", "from_columns": ["lat1", "lon1"], "to_columns": ["lat2", "lon2"]}
    features = add_source_columns(
        create_features(paris_london, FEATURES),
        paris_london,
        _params(distances=[{**spec, "metric": "haversine"}]),
        None,
    )
    assert features["src_d"].iloc[0] == pytest.approx(343.5, abs=1.0)


def test_nothing_declared_leaves_the_feature_table_as_it_is(table):
    features = create_features(table, FEATURES)
    assert add_source_columns(features, table, SOURCE, None) is features


@pytest.mark.parametrize("column", ["fraud_scenario", "is_fraud", "customer_id"])
def test_denied_columns_are_refused(table, column):
    with pytest.raises(ValueError, match=f"Source column '{column}' is refused .* deny list"):
        _with_sources(table, categorical=[column])


def test_a_column_that_gives_the_label_away_on_the_training_window_is_refused(table):
    leaky = table.assign(case_flag=np.where(table["is_fraud"] == 1, "opened", "none"))
    with pytest.raises(ValueError, match="'case_flag' is refused .* single label"):
        _with_sources(leaky, categorical=["case_flag"])
    # A numeric column with a threshold between the classes, e.g. a refund amount.
    refund = table.assign(refund=table["is_fraud"] * table["amount"] + table["is_fraud"])
    with pytest.raises(ValueError, match="'refund' is refused .* threshold on it separates"):
        _with_sources(refund, numeric=["refund"])
    # A derived distance is checked too.
    far = table.assign(shop_x=table["home_x"] + 1000 * table["is_fraud"])
    spec = {
        "name": "trip",
        "from_columns": ["home_x", "home_y"],
        "to_columns": ["shop_x", "shop_y"],
        "metric": "euclidean",
    }
    with pytest.raises(ValueError, match="'trip' is refused"):
        _with_sources(far, distances=[spec])


def test_the_guard_checks_the_split_training_window_only(table):
    """The node checks the split's training window: a column that leaks there is
    refused even though it does not leak on the test week."""
    features = create_features(table, FEATURES)
    last_days = features["timestamp"] >= features["timestamp"].max() - pd.Timedelta(days=6)
    leaky = table.assign(note="x")
    leaky.loc[leaky["is_fraud"] == 1, "note"] = "fraud"
    ids = features.loc[last_days, "transaction_id"]
    leaky.loc[leaky["transaction_id"].isin(ids), "note"] = "x"  # no leak on the test week
    with pytest.raises(ValueError, match="'note' is refused"):
        add_source_columns_node(features, leaky, _params(categorical=["note"]), SPLIT)


def test_undeclared_and_non_numeric_columns_are_named(table):
    with pytest.raises(ValueError, match=r"declares column\(s\) \['age'\] .* extra columns are"):
        _with_sources(table, numeric=["age"])
    with pytest.raises(ValueError, match="'mcc' is declared numeric but 3000 value"):
        _with_sources(table.assign(mcc="x" + table["mcc"]), numeric=["mcc"])


@pytest.mark.spark
def test_a_spark_feature_table_passes_through_unless_source_columns_are_declared(spark):
    """The spark environment: with no source column declared the node hands the Spark
    table on untouched; declaring one is refused with the limitation named."""
    frame = spark.createDataFrame(
        pd.DataFrame({"transaction_id": ["a", "b"], "amount": [1.0, 2.0]})
    )
    none_declared = {**SOURCE, "numeric": [], "categorical": [], "distances": []}
    assert add_source_columns_node(frame, frame, none_declared, SPLIT) is frame
    with pytest.raises(NotImplementedError, match="Spark table .* pandas only"):
        add_source_columns_node(frame, frame, _params(numeric=["customer_age"]), SPLIT)
