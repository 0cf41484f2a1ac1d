"""Simulated frames shared by the simulator tests (each simulated once per session)."""

from __future__ import annotations

import pandas as pd
import pytest

from fraud_detection.simulator import simulate_transactions
from tests.simulator.helpers import SMALL, simulation_parameters


@pytest.fixture(scope="session")
def small() -> pd.DataFrame:
    return simulate_transactions(SMALL)


@pytest.fixture(scope="session")
def default_run() -> pd.DataFrame:
    return simulate_transactions(simulation_parameters())
