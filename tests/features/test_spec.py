"""The feature spec: one list of names, strict parameters, the horizon."""

from __future__ import annotations

import pandas as pd
import pytest

from fraud_detection.features import (
    Aggregation,
    FeatureParams,
    Measure,
    Window,
    build_spec,
    categorical_feature_names,
    create_features,
    feature_columns,
    feature_horizon,
    feature_names,
    numeric_feature_names,
)
from tests.conftest import base_parameters, make_transactions

FEATURES = base_parameters("features")


def test_default_feature_names_are_the_published_columns():
    # The columns models, monitoring profiles and the scorer rely on: a change here is
    # a change of the model's contract.
    assert feature_names(build_spec(FEATURES))[10:] == [
        "tx_hour",
        "tx_day_of_week",
        "tx_during_weekend",
        "tx_during_night",
        "tx_hour_sin",
        "tx_hour_cos",
        "tx_dow_sin",
        "tx_dow_cos",
        "amount_log",
        *(
            f"customer_{kind}_{w}"
            for w in ("1h", "1d", "7d", "30d")
            for kind in ("nb_tx", "avg_amount", "std_amount")
        ),
        "customer_seconds_since_prev_tx",
        "amount_to_customer_avg_30d",
        "amount_zscore_customer_30d",
        "terminal_activity_nb_tx_1h",
        "terminal_activity_nb_tx_1d",
        *(f"terminal_{kind}_{w}" for w in ("1d", "7d", "30d") for kind in ("nb_tx", "risk")),
        "category_nb_tx_7d",
        "category_risk_7d",
        "customer_country_nb_tx_30d",
        "customer_channel_nb_tx_30d",
        "customer_terminal_nb_tx_30d",
    ]


def test_model_inputs_are_the_numeric_and_categorical_names():
    spec = build_spec(FEATURES)
    features = create_features(make_transactions(n=200), FEATURES)
    assert feature_columns(features) == (
        numeric_feature_names(spec),
        categorical_feature_names(spec),
    )
    assert not {"transaction_id", "timestamp", "customer_id", "terminal_id", "is_fraud"} & set(
        numeric_feature_names(spec) + categorical_feature_names(spec)
    )


def test_windows_in_the_parameters_name_the_columns():
    params = {**FEATURES, "customer_windows": ["2h", "3D"], "category_risk_windows": ["1D", "14D"]}
    names = feature_names(build_spec(params))
    assert "customer_nb_tx_2h" in names and "customer_std_amount_3d" in names
    assert "amount_zscore_customer_3d" in names and "customer_nb_tx_30d" not in names
    assert names.index("category_risk_1d") < names.index("category_risk_14d")
    assert list(create_features(make_transactions(n=100), params).columns) == names


def test_horizon_is_the_longest_window_with_its_delay():
    spec = build_spec(FEATURES)
    assert spec.horizon == pd.Timedelta("30D") + pd.Timedelta("7D")
    longer = build_spec({**FEATURES, "category_risk_windows": ["60D"]})
    assert longer.horizon == pd.Timedelta("67D") == feature_horizon(longer)
    params = FeatureParams.from_dict({**FEATURES, "category_risk_windows": ["60D"]})
    assert feature_horizon(params) == longer.horizon


def test_missing_and_unknown_keys_fail_naming_them():
    missing = {k: v for k, v in FEATURES.items() if k != "novelty_window"}
    with pytest.raises(ValueError, match=r"params:features\.novelty_window'.*missing"):
        build_spec(missing)
    with pytest.raises(ValueError, match=r"Unknown key.*'novelty_windows'"):
        build_spec({**FEATURES, "novelty_windows": ["1D"]})


def test_an_aggregation_rejects_options_its_measure_cannot_have():
    day = Window("1D")
    with pytest.raises(ValueError, match="a delay goes with 'fraud' windows only"):
        Aggregation("terminal", ("terminal_id",), Measure.COUNT, (day,), delay=day)
    with pytest.raises(ValueError, match="a delay goes with 'fraud' windows only"):
        Aggregation("terminal", ("terminal_id",), Measure.FRAUD, (day,))
    with pytest.raises(ValueError, match="history features need 'amount'"):
        Aggregation("terminal", ("terminal_id",), Measure.COUNT, (day,), since_previous=True)
    with pytest.raises(ValueError, match="history window not among its windows"):
        Aggregation("customer", ("customer_id",), Measure.AMOUNT, (day,), history=Window("7D"))
