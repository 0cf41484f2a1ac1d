"""Node of the simulation pipeline: a thin call into ``fraud_detection.simulator``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fraud_detection.simulator import SimulationParams, log_summary, simulate


def simulate_transactions(params: dict[str, Any]) -> pd.DataFrame:
    """Kedro node: simulate labelled card transactions from ``params:simulation``.

    Args:
        params: The ``simulation`` parameter mapping.

    Returns:
        Canonical transactions plus ``fraud_scenario`` (the scenario name or
        ``genuine``), sorted by timestamp with time-ordered transaction ids.

    Raises:
        SimulationParameterError: (a ``ValueError``) if a parameter is unknown,
            missing or invalid; the message names it.
    """
    config = SimulationParams.from_dict(params)
    frame = simulate(config)
    log_summary(frame, config)
    return frame
