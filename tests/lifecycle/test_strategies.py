"""Recommendation strategies of a returning customer's session, and the per-row mix the env runs."""

from __future__ import annotations

import numpy as np
import pytest

from ecomsim.lifecycle.model import Lifecycle
from ecomsim.lifecycle.entry import draw_entrants
from ecomsim.lifecycle.returns import NEVER
from ecomsim.lifecycle.sessions import REFERENCE_SESSIONS, SessionVisits
from ecomsim.lifecycle.strategies import STRATEGIES, STRATEGY_NAMES, RowStrategies
from ecomsim.shoppers.population import ShopperPopulation


@pytest.fixture(scope="module")
def core():
    sim = SessionVisits(REFERENCE_SESSIONS)
    core = sim._core(8)
    keys = np.arange(1, 9, dtype=np.uint64) * 977
    core.state.population.context = sim.anonymous_context(keys)
    core.reset(np.arange(8), keys)
    core.state.population.context = None
    return core


def test_strategies_pick_their_best_candidate(core):
    st = core.state
    items = core.candidates
    aff = np.einsum("nmd,nd->nm", st.item_table.emb[items], st.portraits.interest)
    over = np.maximum(0.0, st.item_table.log_price[items] - np.log(st.portraits.budget)[:, None])
    expected = {"popularity": core.catalog.popularity[items], "relevance": aff, "price_fit": aff - over}
    for name in STRATEGY_NAMES:
        slots = STRATEGIES[name](core)
        assert slots.shape == (8, 1) and slots.dtype == np.int64
        assert np.all((slots >= 0) & (slots < items.shape[1]))
        if name in expected:
            np.testing.assert_array_equal(slots[:, 0], np.argmax(expected[name], axis=1))
    # the strategies are not all the same list
    assert not np.array_equal(STRATEGIES["relevance"](core), STRATEGIES["popularity"](core))


def test_row_strategies_mix_rows(core):
    mix = RowStrategies()
    mix.choice = np.array([0, 1, 2, 3, 0, 1], dtype=np.int64)  # 6 visits on a core of 8: rows 6, 7 follow row 0
    out = mix(core)
    full = np.concatenate([mix.choice, [0, 0]])
    for i, k in enumerate(full):
        np.testing.assert_array_equal(out[i], STRATEGIES[STRATEGY_NAMES[k]](core)[i])
    mix.choice = np.zeros(9, dtype=np.int64)
    with pytest.raises(RuntimeError, match="9 rows for a batch of 8"):
        mix(core)


def test_gap_coupon_raises_the_return_and_visit_until_its_day_draws_nothing():
    sim = SessionVisits(REFERENCE_SESSIONS)
    lc = Lifecycle(sim.catalog)
    entrants = draw_entrants(ShopperPopulation(sim.catalog), np.zeros(200, dtype=np.int64), sim,
                             np.random.default_rng(0))
    c = lc.new_customers(entrants, until=0)
    assert np.all(c.next_day == NEVER)  # an empty scan: the gap is left to Lifecycle.gap
    rows = np.arange(200)
    before = lc.return_probability(c, rows, 30)
    with_coupon = c.take(rows)
    with_coupon.coupon[:] = 0.2
    with_coupon.coupon_until[:] = 30
    after = lc.return_probability(with_coupon, rows, 30)
    assert np.all(after[c.alive] > before[c.alive])  # return_coupon > 0
    gap = lc.gap(c, rows, 365, coupon=np.full(200, 0.1))
    assert np.all(c.coupon == 0.1) and np.all(c.coupon_until == 30)
    reached = gap.next_day != NEVER
    assert reached.any() and np.all(gap.next_day[reached] <= 365) and np.all(~gap.churned[reached])
    assert np.all(gap.message_cost == 0) and np.all(gap.messages_sent == 0)
