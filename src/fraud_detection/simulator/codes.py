"""Units, vocabularies and the internal transaction frame shared by every stage.

The stages work on integer codes and nanosecond offsets from the first simulated day;
``assembly.to_canonical`` maps them to the canonical schema only once, at the end.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraud_detection import schema

DAY_NS = 86_400 * 10**9
HOUR_NS = 3_600 * 10**9
MINUTE_NS = 60 * 10**9
SECOND_NS = 10**9
HOURS_PER_DAY = 24

SCENARIO_COLUMN = "fraud_scenario"
OUTPUT_COLUMNS: tuple[str, ...] = (*schema.COLUMN_NAMES, SCENARIO_COLUMN)

CHANNELS: tuple[str, ...] = ("pos", "ecommerce", "atm")
POS, ECOMMERCE, ATM = 0, 1, 2

SCENARIOS: tuple[str, ...] = (
    "genuine",
    "high_amount",
    "compromised_terminal",
    "compromised_customer",
    "account_takeover",
    "card_testing",
    "merchant_collusion",
    "geo_anomaly",
)
(
    GENUINE,
    HIGH_AMOUNT,
    COMPROMISED_TERMINAL,
    COMPROMISED_CUSTOMER,
    ACCOUNT_TAKEOVER,
    CARD_TESTING,
    MERCHANT_COLLUSION,
    GEO_ANOMALY,
) = range(len(SCENARIOS))

# Merchant category -> amount scale relative to the customer's mean spend.
CATEGORY_AMOUNT_SCALE: dict[str, float] = {
    "grocery": 1.0,
    "restaurants": 0.8,
    "fuel": 1.0,
    "clothing": 1.1,
    "pharmacy": 0.5,
    "entertainment": 0.7,
    "electronics": 1.25,
    "jewelry": 1.3,
    "travel": 1.25,
    "online_retail": 1.0,
    "atm": 1.1,
}
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_AMOUNT_SCALE)
CATEGORY_CODE: dict[str, int] = {name: code for code, name in enumerate(CATEGORIES)}
# Share of each category among physical point-of-sale and online terminals.
POS_CATEGORY_MIX: dict[str, float] = {
    "grocery": 0.30,
    "restaurants": 0.22,
    "fuel": 0.12,
    "clothing": 0.10,
    "pharmacy": 0.07,
    "entertainment": 0.08,
    "electronics": 0.05,
    "jewelry": 0.02,
    "travel": 0.04,
}
ONLINE_CATEGORY_MIX: dict[str, float] = {
    "online_retail": 0.55,
    "electronics": 0.15,
    "travel": 0.12,
    "entertainment": 0.18,
}
HIGH_VALUE_ONLINE: tuple[str, ...] = ("online_retail", "electronics", "travel")

# Relative activity per hour of day (index 0 = 00:00-00:59).
HOUR_PROFILES: dict[str, tuple[float, ...]] = {
    "weekday": (
        0.3, 0.2, 0.15, 0.1, 0.1, 0.2, 0.6, 1.5, 2.5, 3.0, 3.2, 3.8,
        4.5, 4.0, 3.4, 3.3, 3.8, 4.6, 5.0, 4.2, 3.0, 2.0, 1.2, 0.6,
    ),
    "weekend": (
        0.6, 0.4, 0.3, 0.2, 0.1, 0.1, 0.3, 0.7, 1.5, 2.8, 4.0, 4.6,
        4.8, 4.6, 4.4, 4.2, 4.2, 4.3, 4.3, 4.0, 3.2, 2.4, 1.6, 1.0,
    ),
    "ecommerce": (
        0.8, 0.5, 0.3, 0.2, 0.2, 0.3, 0.6, 1.2, 1.8, 2.2, 2.5, 2.7,
        3.0, 2.8, 2.6, 2.6, 2.8, 3.2, 3.8, 4.4, 4.8, 4.6, 3.4, 1.8,
    ),
    "takeover": (
        6.0, 7.0, 7.0, 6.5, 5.5, 4.0, 1.5, 0.5, 0.3, 0.3, 0.3, 0.3,
        0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.5, 0.8, 1.5, 3.0, 4.5,
    ),
}  # fmt: skip
PROFILE_CODE: dict[str, int] = {name: code for code, name in enumerate(HOUR_PROFILES)}


def transaction_frame(
    customer: np.ndarray,
    terminal: np.ndarray,
    ts: np.ndarray,
    amount: np.ndarray,
    scenario: int,
) -> pd.DataFrame:
    """Internal transaction rows of one stage.

    Args:
        customer: Customer index of each row.
        terminal: Terminal index of each row.
        ts: Nanoseconds since the start of the first simulated day.
        amount: Amount of each row.
        scenario: Code in ``SCENARIOS`` given to every row.

    Returns:
        A frame with the columns ``customer``, ``terminal``, ``ts``, ``amount`` and
        ``scenario``, in compact dtypes.
    """
    return pd.DataFrame(
        {
            "customer": customer.astype(np.int32),
            "terminal": terminal.astype(np.int32),
            "ts": ts.astype(np.int64),
            "amount": amount.astype(np.float64),
            "scenario": np.full(len(ts), scenario, dtype=np.int8),
        }
    )
