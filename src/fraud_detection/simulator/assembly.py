"""Assembly: run every stage and map the internal codes to the canonical schema."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from fraud_detection import schema

from .codes import (
    CATEGORIES,
    CHANNELS,
    DAY_NS,
    GENUINE,
    OUTPUT_COLUMNS,
    SCENARIO_COLUMN,
    SCENARIOS,
    SECOND_NS,
)
from .genuine import generate_genuine_transactions
from .params import SimulationParams
from .profiles import TerminalProfiles, build_customer_profiles, build_terminal_profiles
from .scenarios import (
    apply_compromised_customers,
    apply_compromised_terminals,
    apply_high_amount,
    inject_account_takeover,
    inject_card_testing,
    inject_geo_anomaly,
    inject_merchant_collusion,
)

logger = logging.getLogger(__name__)


def _format_ids(prefix: str, n: int, width: int) -> pd.Series:
    """Zero-padded string ids ``prefix + 000..0`` .. ``n - 1``, in order."""
    width = max(width, len(str(max(n - 1, 0))))
    number = pd.Series(np.arange(n, dtype=np.int64) + 10**width).astype("str")
    return prefix + number.str.slice(1)


def _lookup(names: tuple[str, ...], codes: np.ndarray) -> pd.Series:
    """String column from integer codes into ``names``."""
    vocabulary = pd.Series(list(names), dtype="str")
    return pd.Series(vocabulary.array.take(codes))


def to_canonical(
    tx: pd.DataFrame, params: SimulationParams, terminals: TerminalProfiles
) -> pd.DataFrame:
    """Sort by time and map the internal codes to the canonical schema.

    Args:
        tx: Internal transaction frame.
        params: Simulation parameters.
        terminals: Terminal profiles.

    Returns:
        Canonical transactions plus ``fraud_scenario``, sorted by timestamp, with
        transaction ids increasing in time order.
    """
    seconds = tx["ts"].to_numpy() // SECOND_NS
    order = np.argsort(seconds, kind="stable")
    tx = tx.iloc[order]
    terminal = tx["terminal"].to_numpy()
    customer_ids = _format_ids("C", params.n_customers, 6)
    terminal_ids = _format_ids("M", params.n_terminals, 6)
    scenario = tx["scenario"].to_numpy()
    start = pd.Timestamp(params.start_date).as_unit("ns").to_datetime64()
    frame = pd.DataFrame(
        {
            schema.TRANSACTION_ID: _format_ids("T", len(tx), 9),
            schema.TIMESTAMP: start + (seconds[order] * SECOND_NS).astype("timedelta64[ns]"),
            schema.CUSTOMER_ID: pd.Series(customer_ids.array.take(tx["customer"].to_numpy())),
            schema.TERMINAL_ID: pd.Series(terminal_ids.array.take(terminal)),
            schema.MERCHANT_CATEGORY: _lookup(CATEGORIES, terminals.category[terminal]),
            schema.AMOUNT: tx["amount"].to_numpy(dtype=np.float64),
            schema.CURRENCY: pd.Series(params.currency, index=range(len(tx)), dtype="str"),
            schema.COUNTRY: _lookup(params.countries, terminals.country[terminal]),
            schema.CHANNEL: _lookup(CHANNELS, terminals.channel[terminal]),
            schema.LABEL: (scenario != GENUINE).astype(np.int64),
            SCENARIO_COLUMN: _lookup(SCENARIOS, scenario),
        }
    )
    return frame[list(OUTPUT_COLUMNS)]


def simulate(params: SimulationParams) -> pd.DataFrame:
    """Run the whole simulation for validated parameters.

    Args:
        params: Simulation parameters.

    Returns:
        Canonical transactions plus ``fraud_scenario``, sorted by timestamp.
    """
    terminals = build_terminal_profiles(params)
    customers = build_customer_profiles(params, terminals)
    genuine = generate_genuine_transactions(params, customers, terminals)
    tx = pd.concat(
        [
            genuine,
            inject_account_takeover(params, customers, terminals),
            inject_card_testing(params, terminals),
            inject_merchant_collusion(params, terminals),
            inject_geo_anomaly(genuine, params, customers, terminals),
        ],
        ignore_index=True,
    )
    tx = tx[tx["ts"] < params.n_days * DAY_NS].reset_index(drop=True)
    tx = apply_compromised_terminals(tx, terminals, params)
    tx = apply_compromised_customers(tx, params)
    tx = apply_high_amount(tx, params)
    return to_canonical(tx, params, terminals)


def simulate_transactions(params: Mapping[str, Any] | SimulationParams) -> pd.DataFrame:
    """Simulate labelled card transactions from the ``simulation`` parameters.

    The one-call entry point for services and scripts (the Kafka producer, the
    benchmarks): validate, simulate, and log the size and the fraud mix.

    Args:
        params: The ``simulation`` parameter mapping (every key of
            ``conf/base/parameters_simulation.yml``), or validated parameters.

    Returns:
        Canonical transactions plus ``fraud_scenario`` (the scenario name or
        ``genuine``), sorted by timestamp with time-ordered transaction ids.

    Raises:
        SimulationParameterError: (a ``ValueError``) if a parameter is unknown,
            missing or invalid; the message names it.
    """
    config = params if isinstance(params, SimulationParams) else SimulationParams.from_dict(params)
    frame = simulate(config)
    log_summary(frame, config)
    return frame


def log_summary(frame: pd.DataFrame, params: SimulationParams) -> None:
    """Log the size of a simulated frame, its fraud rate and its scenario mix.

    Args:
        frame: Simulated transactions with ``fraud_scenario``.
        params: The parameters it was simulated with.
    """
    logger.info(
        "Simulated %d transactions over %d days for %d customers and %d terminals; "
        "fraud rate %.3f%%",
        len(frame),
        params.n_days,
        params.n_customers,
        params.n_terminals,
        100 * frame[schema.LABEL].mean() if len(frame) else 0.0,
    )
    shares = frame.groupby(SCENARIO_COLUMN)[schema.LABEL].size() / max(len(frame), 1)
    logger.info("Share of transactions per scenario: %s", shares.round(5).to_dict())
