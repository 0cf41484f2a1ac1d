"""Tests of the transaction simulator."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from fraud_detection import schema
from fraud_detection.pipelines.simulation import create_pipeline
from fraud_detection.pipelines.simulation.nodes import (
    OUTPUT_COLUMNS,
    SCENARIOS,
    ScenarioParams,
    SimulationParameterError,
    SimulationParams,
    simulate_transactions,
)

PARAMETERS_FILE = (
    Path(__file__).resolve().parents[3] / "conf" / "base" / "parameters_simulation.yml"
)

THRESHOLD = 220.0
TINY_MAX = 2.0
CASHOUT_MIN = 150.0
MIN_BURST = 5
N_WEAK_MERCHANTS = 5
NIGHT_END_HOUR = 6
DAY_TO_NIGHT_RATIO = 5
DEFAULT_ROWS = (200_000, 400_000)
DEFAULT_FRAUD_RATE = (0.005, 0.01)

# Small population with boosted fraud rates: every scenario shows up in ~1 s.
SMALL: dict[str, Any] = {
    "start_date": "2024-03-01",
    "n_days": 28,
    "n_customers": 300,
    "n_terminals": 600,
    "seed": 7,
    "scenarios": {
        "compromised_terminals": {"daily_rate": 5.0e-4},
        "compromised_customers": {"daily_rate": 2.0e-3},
        "account_takeover": {"daily_rate": 2.0e-3},
        "card_testing": {"daily_rate": 2.0e-3},
        "merchant_collusion": {
            "rings_per_1000_terminals": 2.0,
            "duration_days": [7, 14],
        },
        "geo_anomaly": {"daily_rate": 3.0e-3},
    },
}


def _load_defaults() -> dict[str, Any]:
    """The ``simulation`` block of the project's parameter file."""
    with PARAMETERS_FILE.open() as handle:
        return yaml.safe_load(handle)["simulation"]


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return simulate_transactions(SMALL)


@pytest.fixture(scope="module")
def default_run() -> pd.DataFrame:
    return simulate_transactions(_load_defaults())


def test_output_has_the_canonical_schema_and_dtypes(small):
    assert list(small.columns) == [*schema.COLUMN_NAMES, "fraud_scenario"]
    assert tuple(small.columns) == OUTPUT_COLUMNS
    assert small[schema.TIMESTAMP].dtype == "datetime64[ns]"
    assert small[schema.TIMESTAMP].dt.tz is None
    assert small[schema.AMOUNT].dtype == np.float64
    assert pd.api.types.is_integer_dtype(small[schema.LABEL])
    assert set(small[schema.LABEL].unique()) == {0, 1}
    for column in (
        schema.TRANSACTION_ID,
        schema.CUSTOMER_ID,
        schema.TERMINAL_ID,
        schema.MERCHANT_CATEGORY,
        schema.CURRENCY,
        schema.COUNTRY,
        schema.CHANNEL,
        "fraud_scenario",
    ):
        assert pd.api.types.is_string_dtype(small[column]), column
    assert small.notna().all().all()
    assert (small[schema.AMOUNT] > 0).all()
    assert set(small[schema.CHANNEL]) == {"pos", "ecommerce", "atm"}
    assert set(small[schema.CURRENCY]) == {"EUR"}


def test_label_matches_scenario(small):
    genuine = small["fraud_scenario"] == "genuine"
    assert (small.loc[genuine, schema.LABEL] == 0).all()
    assert (small.loc[~genuine, schema.LABEL] == 1).all()
    assert set(small["fraud_scenario"]) <= set(SCENARIOS)


def test_sorted_by_time_with_increasing_unique_ids(small):
    assert small[schema.TIMESTAMP].is_monotonic_increasing
    assert small[schema.TRANSACTION_ID].is_unique
    assert small[schema.TRANSACTION_ID].is_monotonic_increasing
    start = pd.Timestamp(SMALL["start_date"])
    assert small[schema.TIMESTAMP].min() >= start
    assert small[schema.TIMESTAMP].max() < start + pd.Timedelta(days=SMALL["n_days"])


def test_same_parameters_and_seed_give_identical_output(small):
    pd.testing.assert_frame_equal(simulate_transactions(SMALL), small)


def test_another_seed_gives_other_output(small):
    other = simulate_transactions({**SMALL, "seed": 8})
    assert (
        not other[[schema.CUSTOMER_ID, schema.AMOUNT]]
        .head(500)
        .equals(small[[schema.CUSTOMER_ID, schema.AMOUNT]].head(500))
    )


def test_every_scenario_is_present(small):
    assert set(small["fraud_scenario"]) == set(SCENARIOS)


def test_default_parameters_give_a_realistic_fraud_rate(default_run):
    assert DEFAULT_ROWS[0] <= len(default_run) <= DEFAULT_ROWS[1]
    rate = default_run[schema.LABEL].mean()
    assert DEFAULT_FRAUD_RATE[0] <= rate <= DEFAULT_FRAUD_RATE[1]
    assert set(default_run["fraud_scenario"]) == set(SCENARIOS)


def test_hourly_and_weekly_seasonality_are_visible(small):
    genuine = small[small["fraud_scenario"] == "genuine"]
    hour = genuine[schema.TIMESTAMP].dt.hour
    day, night = hour.between(9, 20).sum(), (hour < NIGHT_END_HOUR).sum()
    assert day > DAY_TO_NIGHT_RATIO * night
    weekday = genuine[schema.TIMESTAMP].dt.day_of_week
    per_day = weekday.value_counts()
    assert per_day[5] > per_day[6]  # Saturday busier than Sunday


def test_card_testing_bursts_are_tiny_amounts_close_in_time(small):
    burst = small[
        (small["fraud_scenario"] == "card_testing") & (small[schema.AMOUNT] <= TINY_MAX)
    ]
    assert len(burst) > 0
    assert burst[schema.AMOUNT].between(0.5, TINY_MAX).all()
    assert (burst[schema.CHANNEL] == "ecommerce").all()
    gaps = burst.groupby(schema.CUSTOMER_ID)[schema.TIMESTAMP].diff().dropna()
    assert gaps.median() < pd.Timedelta(minutes=2)
    per_merchant = burst.groupby([schema.CUSTOMER_ID, schema.TERMINAL_ID]).size()
    assert per_merchant.median() >= MIN_BURST  # many tests at one merchant
    assert burst[schema.TERMINAL_ID].nunique() <= N_WEAK_MERCHANTS
    cashout = small[
        (small["fraud_scenario"] == "card_testing")
        & (small[schema.AMOUNT] >= CASHOUT_MIN)
    ]
    assert len(cashout) > 0


def test_geo_anomaly_happens_abroad_soon_after_a_home_transaction(small):
    far = set(SimulationParams().far_countries)
    geo = small[small["fraud_scenario"] == "geo_anomaly"]
    assert geo[schema.COUNTRY].isin(far).all()
    previous = small.groupby(schema.CUSTOMER_ID)[schema.TIMESTAMP].diff()
    assert previous[geo.index].median() < pd.Timedelta(hours=6)


def test_account_takeover_is_online_and_large(small):
    ato = small[small["fraud_scenario"] == "account_takeover"]
    assert (ato[schema.CHANNEL] == "ecommerce").all()
    genuine = small[small["fraud_scenario"] == "genuine"]
    assert ato[schema.AMOUNT].median() > 2 * genuine[schema.AMOUNT].median()


def test_high_amount_rule_and_compromised_terminal_window(small):
    genuine = small[small["fraud_scenario"] == "genuine"]
    assert (genuine[schema.AMOUNT] <= THRESHOLD).all()
    high = small[small["fraud_scenario"] == "high_amount"]
    assert (high[schema.AMOUNT] > THRESHOLD).all()
    terminal = small[small["fraud_scenario"] == "compromised_terminal"]
    span = terminal.groupby(schema.TERMINAL_ID)[schema.TIMESTAMP].agg(["min", "max"])
    assert ((span["max"] - span["min"]) < pd.Timedelta(days=28)).all()


def test_parameter_file_is_valid():
    raw = _load_defaults()
    params = SimulationParams.from_dict(raw)
    assert params.scenarios.high_amount.threshold == THRESHOLD
    # The file spells out every parameter, so none hides behind a code default.
    assert set(raw) == {f.name for f in dataclasses.fields(SimulationParams)}
    assert set(raw["scenarios"]) == {f.name for f in dataclasses.fields(ScenarioParams)}


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"n_custmers": 10}, "simulation.n_custmers"),
        ({"scenarios": {"card_testing": {"burst": [1, 2]}}}, "card_testing.burst"),
        ({"n_days": 0}, "simulation.n_days"),
        ({"n_days": "ninety"}, "simulation.n_days"),
        ({"start_date": "not-a-date"}, "simulation.start_date"),
        ({"day_of_week_factors": [1.0, 1.0]}, "simulation.day_of_week_factors"),
        (
            {"scenarios": {"geo_anomaly": {"burst_size": [3, 1]}}},
            "simulation.scenarios.geo_anomaly.burst_size",
        ),
        (
            {"scenarios": {"account_takeover": {"daily_rate": 2.0}}},
            "simulation.scenarios.account_takeover.daily_rate",
        ),
    ],
)
def test_bad_parameter_raises_naming_the_key(params, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")) as info:
        simulate_transactions(params)
    assert isinstance(info.value, SimulationParameterError)


def test_unknown_key_suggests_the_close_name():
    with pytest.raises(ValueError, match="did you mean 'n_customers'"):
        SimulationParams.from_dict({"n_custmers": 10})


def test_pipeline_wires_params_to_raw_transactions():
    pipeline = create_pipeline()
    (node,) = pipeline.nodes
    assert node.name == "simulate_transactions_node"
    assert node.inputs == ["params:simulation"]
    assert node.outputs == ["raw_transactions"]
    params = {**SMALL, "n_days": 7, "n_customers": 50, "n_terminals": 200}
    outputs = node.run({"params:simulation": params})
    assert len(outputs["raw_transactions"]) > 0
