"""Terminal and customer profiles."""

from __future__ import annotations

import numpy as np

from fraud_detection.simulator import SimulationParams
from fraud_detection.simulator.codes import ATM, ECOMMERCE, POS
from fraud_detection.simulator.profiles import (
    build_customer_profiles,
    build_terminal_profiles,
    terminals_within_radius,
)
from tests.simulator.helpers import SMALL


def test_terminals_within_radius_match_a_brute_force_search():
    rng = np.random.default_rng(3)
    home, sites = rng.uniform(0, 20, (40, 2)), rng.uniform(0, 20, (60, 2))
    ids = np.arange(100, 160)
    hood = terminals_within_radius(home, sites, ids, radius=2.5)
    d2 = ((home[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2)
    for customer in range(len(home)):
        near = ids[d2[customer] <= 2.5**2]
        expected = near if len(near) else ids[[d2[customer].argmin()]]
        got = hood.idx[hood.ptr[customer] : hood.ptr[customer + 1]]
        np.testing.assert_array_equal(got, np.sort(expected))


def test_terminal_mix_matches_the_counts_and_customers_use_domestic_terminals():
    params = SimulationParams.from_dict(SMALL)
    terminals = build_terminal_profiles(params)
    counts = params.terminal_counts()
    assert terminals.foreign.sum() == counts["foreign"]
    assert (terminals.channel == ECOMMERCE).sum() == counts["online"]
    assert (~terminals.foreign & (terminals.channel == ATM)).sum() == counts["atm"]
    assert (~terminals.foreign & (terminals.channel == POS)).sum() == counts["pos"]
    customers = build_customer_profiles(params, terminals)
    assert len(customers.x) == params.n_customers
    for hood, channel in ((customers.pos, POS), (customers.atm, ATM)):
        assert (np.diff(hood.ptr) > 0).all()  # nobody is left without a terminal
        assert not terminals.foreign[hood.idx].any()
        assert (terminals.channel[hood.idx] == channel).all()
    assert (terminals.channel[customers.favourites] == ECOMMERCE).all()
