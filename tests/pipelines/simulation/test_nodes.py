"""The simulation node: a thin call into the simulator package."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from fraud_detection.pipelines.simulation.nodes import simulate_transactions
from fraud_detection.simulator import (
    SimulationParameterError,
    SimulationParams,
    simulate,
)
from tests.simulator.helpers import simulation_parameters

TINY = simulation_parameters(n_days=7, n_customers=50, n_terminals=200)


def test_node_returns_the_simulators_frame_and_logs_its_summary(caplog):
    with caplog.at_level(logging.INFO, logger="fraud_detection"):
        frame = simulate_transactions(TINY)
    pd.testing.assert_frame_equal(frame, simulate(SimulationParams.from_dict(TINY)))
    assert f"Simulated {len(frame)} transactions over 7 days" in caplog.text


def test_node_names_a_bad_parameter():
    with pytest.raises(SimulationParameterError, match=r"params:simulation\.n_days"):
        simulate_transactions({**TINY, "n_days": 0})
