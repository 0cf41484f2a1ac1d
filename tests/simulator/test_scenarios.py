"""The fraud scenarios look like their descriptions in docs/simulator.md."""

from __future__ import annotations

import pandas as pd

from fraud_detection import schema
from tests.simulator.helpers import SMALL

THRESHOLD = 220.0
TINY_MAX = 2.0
CASHOUT_MIN = 150.0
MIN_BURST = 5
N_WEAK_MERCHANTS = 5


def test_card_testing_bursts_are_tiny_amounts_close_in_time(small):
    burst = small[(small["fraud_scenario"] == "card_testing") & (small[schema.AMOUNT] <= TINY_MAX)]
    assert len(burst) > 0
    assert burst[schema.AMOUNT].between(0.5, TINY_MAX).all()
    assert (burst[schema.CHANNEL] == "ecommerce").all()
    gaps = burst.groupby(schema.CUSTOMER_ID)[schema.TIMESTAMP].diff().dropna()
    assert gaps.median() < pd.Timedelta(minutes=2)
    per_merchant = burst.groupby([schema.CUSTOMER_ID, schema.TERMINAL_ID]).size()
    assert per_merchant.median() >= MIN_BURST  # many tests at one merchant
    assert burst[schema.TERMINAL_ID].nunique() <= N_WEAK_MERCHANTS
    cashout = small[
        (small["fraud_scenario"] == "card_testing") & (small[schema.AMOUNT] >= CASHOUT_MIN)
    ]
    assert len(cashout) > 0


def test_geo_anomaly_happens_abroad_soon_after_a_home_transaction(small):
    far = set(SMALL["far_countries"])
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
