"""The simulated frame: canonical schema, time order, labels and determinism."""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import pandas as pd

from fraud_detection import schema
from fraud_detection.simulator import (
    OUTPUT_COLUMNS,
    SCENARIOS,
    SimulationParams,
    simulate,
    simulate_transactions,
)
from tests.simulator.helpers import SMALL

DEFAULT_ROWS = (200_000, 400_000)
DEFAULT_FRAUD_RATE = (0.005, 0.01)

# Fingerprint of the SMALL frame (seed 7), recorded before the simulator was split into
# modules: any change to the draws, their order or the output mapping shows up here.
SMALL_ROWS = 18_493
SMALL_SCENARIO_COUNTS = {
    "genuine": 17_861,
    "card_testing": 191,
    "compromised_terminal": 120,
    "compromised_customer": 102,
    "account_takeover": 92,
    "merchant_collusion": 73,
    "geo_anomaly": 34,
    "high_amount": 20,
}
SMALL_AMOUNT_TOTAL = 971_430.08
SMALL_SHA256 = "b07182cc5cd6d8a22fcd651e9751d9ebb0427d95a65ec3fef30481cdc6ff90ad"


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


def test_output_for_a_seed_is_pinned(small):
    assert len(small) == SMALL_ROWS
    assert small["fraud_scenario"].value_counts().to_dict() == SMALL_SCENARIO_COUNTS
    assert round(float(small[schema.AMOUNT].sum()), 2) == SMALL_AMOUNT_TOTAL
    text = small.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S")
    assert hashlib.sha256(text.encode()).hexdigest() == SMALL_SHA256


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


def test_validated_parameters_and_a_mapping_give_the_same_frame(small):
    params = SimulationParams.from_dict(SMALL)
    pd.testing.assert_frame_equal(simulate_transactions(params), small)
    pd.testing.assert_frame_equal(simulate(params), small)


def test_simulate_transactions_logs_the_size_and_the_fraud_mix(small, caplog):
    with caplog.at_level(logging.INFO, logger="fraud_detection.simulator"):
        simulate_transactions(SMALL)
    assert f"Simulated {len(small)} transactions over 28 days" in caplog.text
    assert "Share of transactions per scenario" in caplog.text
    assert "'card_testing'" in caplog.text
