"""The daily loop on real session demand: seeded, accounts and metrics consistent, baselines ordered as they should be."""

from __future__ import annotations

import numpy as np
import pytest

from ecomsim.store import (
    BaseStock,
    GroupSubstitution,
    ItemGroups,
    MovingAverageForecaster,
    NeverOrder,
    ReplayDemand,
    ReplenishmentPolicy,
    SsPolicy,
    StoreConfig,
    StoreItems,
    StoreSimulation,
    StoreState,
    per_store_metrics,
    store_metrics,
)
from ecomsim.store.tuning import SsGrid, replay_evaluator, ss_levels, tune_ss


def run(sd, policy, demand, seed=0, substitution=None, stores=None):
    stores = demand.shape[0] if stores is None else stores
    state = StoreState(sd.config, sd.items, sd.groups, stores)
    replay = ReplayDemand(demand, None if stores == demand.shape[0] else np.zeros(stores, dtype=np.int64),
                          substitution=substitution)
    sim = StoreSimulation(state, replay, policy, MovingAverageForecaster(sd.groups, sd.daily_rate))
    return sim.run(demand.shape[1], sd.daily_rate, seed=seed)


def test_seeded_runs_are_identical(session_demand):
    sd = session_demand
    sub = GroupSubstitution(sd.groups, sd.items, share=0.5)  # draws from the run's generator
    a = run(sd, BaseStock(review_days=3), sd.test, seed=7, substitution=sub)
    b = run(sd, BaseStock(review_days=3), sd.test, seed=7, substitution=sub)
    c = run(sd, BaseStock(review_days=3), sd.test, seed=8, substitution=sub)
    for name in a.arrays:
        np.testing.assert_array_equal(a[name], b[name])
    assert a["lost"].sum() > 0 and not np.array_equal(a["sold"], c["sold"])  # substitution draws differ


def test_history_adds_up_and_metrics_follow_their_formulas(session_demand):
    sd = session_demand
    h = run(sd, BaseStock(review_days=7), sd.test)
    assert h["profit"].shape == (2, sd.test.shape[1], sd.groups.num_groups)
    # all replayed demand arrives, and with no substitution nothing else does
    np.testing.assert_array_equal(h.daily("demand"), sd.test.sum(axis=2))
    np.testing.assert_array_equal(h["sold"] + h["lost"], h["demand"])
    # stock flows: close(t) = close(t-1) + received(t) - sold(t)
    stock = h["stock"]
    np.testing.assert_array_equal(stock[:, 1:], stock[:, :-1] + h["received"][:, 1:] - h["sold"][:, 1:])
    m = per_store_metrics(h)
    np.testing.assert_allclose(m["profit_per_day"], h.daily("profit").sum(axis=1) / h.num_days)
    np.testing.assert_allclose(m["stockout_rate"], h.daily("lost").sum(axis=1) / h.daily("demand").sum(axis=1))
    np.testing.assert_allclose(m["inventory_turnover"], h.daily("cogs").sum(axis=1) / h.daily("inventory_value").mean(axis=1))
    est = store_metrics(h)
    assert est["profit_per_day"].n == 2 and est["profit_per_day"].value == pytest.approx(m["profit_per_day"].mean())


def test_base_stock_beats_never_ordering_on_held_out_demand(session_demand):
    sd = session_demand
    never = per_store_metrics(run(sd, NeverOrder(), sd.test))
    base = per_store_metrics(run(sd, BaseStock(review_days=7), sd.test))
    assert (base["profit_per_day"] > never["profit_per_day"]).all(), (base, never)
    assert (base["stockout_rate"] < never["stockout_rate"]).all()


def test_group_substitution_sells_the_groups_best_seller_in_stock():
    groups = ItemGroups(np.array([0, 0, 0, 1]), ["a", "b"])
    price = np.full(4, 10.0)
    items = StoreItems(price=price, unit_cost=price * 0.7, popularity=np.array([0.4, 0.1, 0.3, 0.2]),
                       category=np.zeros(4, dtype=np.int64), category_names=("x",))
    state = StoreState(StoreConfig(initial_fill_days=0.0), items, groups, 1)
    state.reset(np.zeros(4))
    state.stock[0] = [0, 5, 2, 0]
    state.open_day()
    replay = ReplayDemand(np.array([[[4, 0, 0, 3]]]), substitution=GroupSubstitution(groups, items, share=1.0))
    replay.reset(state, np.random.default_rng(0))
    replay.run_day(0, state)
    # item 0 is out: its 4 units ask for item 2 (most popular of group a in stock), which has 2; item 3's
    # group has nothing in stock, so its units stay lost
    assert state.sold[0].tolist() == [0, 0, 2, 0]
    assert state.demand[0].tolist() == [4, 0, 4, 3]


def test_base_stock_levels_and_ss_orders():
    groups = ItemGroups(np.array([0, 1]), ["a", "b"])
    price = np.full(2, 10.0)
    items = StoreItems(price=price, unit_cost=price * 0.5, popularity=np.full(2, 0.5),
                       category=np.zeros(2, dtype=np.int64), category_names=("x",))
    state = StoreState(StoreConfig(lead_time_days=[3, 1]), items, groups, 1)
    policy = BaseStock(review_days=7, safety_z=2.0)
    policy.reset(state)
    assert policy.protection.tolist() == [9, 7] and policy.forecast_days == 9
    levels = policy.levels(np.full((1, 9, 2), 4.0))  # 4 units a day
    assert levels.tolist() == [[int(np.ceil(36 + 2 * 6)), int(np.ceil(28 + 2 * np.sqrt(28)))]]
    ss = SsPolicy(np.array([5, 2]), np.array([20, 9]))
    ss.reset(state)
    state.reset(np.array([0.0, 0.0]))
    state.stock[0] = [5, 3]
    assert ss.order(state, None).tolist() == [[15, 0]]  # at s: up to S; above s: nothing
    with pytest.raises(ValueError, match=r"order_up_to must exceed reorder_point, got S=2 <= s=2 at \[1\]"):
        SsPolicy(np.array([1, 2]), np.array([3, 2]))
    with pytest.raises(ValueError, match=r"reorder_point must be >= 0 units, got \[-1\]"):
        SsPolicy(np.array([-1, 2]), np.array([3, 4]))


def test_tuned_ss_beats_untuned_on_held_out_seeds(session_demand):
    """Tuned on the two training trajectories, scored on the two held-out ones (a small grid keeps it quick)."""
    sd = session_demand
    grid = SsGrid(reorder_days=(1.0, 3.0, 6.0, 11.0), gap_days=(2.0, 7.0, 14.0, 28.0))
    evaluate = replay_evaluator(lambda n: StoreState(sd.config, sd.items, sd.groups, n), sd.train, sd.daily_rate,
                                MovingAverageForecaster(sd.groups, sd.daily_rate), seed=0)
    tuned = tune_ss(evaluate, sd.group_mean, grid=grid, start=(3.0, 7.0), sweeps=2)
    assert tuned.profit[-1] >= tuned.profit[0]
    untuned = SsPolicy(*ss_levels(sd.group_mean, 3.0, 7.0))
    held_tuned = per_store_metrics(run(sd, tuned.policy(), sd.test))["profit_per_day"]
    held_untuned = per_store_metrics(run(sd, untuned, sd.test))["profit_per_day"]
    assert (held_tuned > held_untuned).all(), (held_tuned, held_untuned)


class RandomOrders(ReplenishmentPolicy):
    """Random group orders (up to 3x a group's mean daily demand, or nothing), from a seeded generator."""

    name = "random_orders"

    def __init__(self, group_mean: np.ndarray, seed: int) -> None:
        self.group_mean = group_mean
        self.rng = np.random.default_rng(seed)

    def order(self, state, forecast):
        high = np.ceil(3 * self.group_mean + 1).astype(np.int64)
        q = self.rng.integers(0, high + 1, size=(state.num_stores, state.num_groups))
        return np.where(self.rng.random(q.shape) < 0.5, q, 0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_orders_over_a_thousand_store_days(session_demand, seed):
    """20 stores x 56 days of real session demand, random orders, substitution on: stock never negative,
    close(t) = close(t-1) + received(t) - sold(t) per group, and every order received on its day."""
    sd = session_demand
    sub = GroupSubstitution(sd.groups, sd.items, share=0.5)
    policy = RandomOrders(sd.group_mean, seed)
    state = StoreState(sd.config, sd.items, sd.groups, 20)
    replay = ReplayDemand(sd.test, np.arange(20) % 2, substitution=sub)
    h = StoreSimulation(state, replay, policy, MovingAverageForecaster(sd.groups, sd.daily_rate)).run(56, sd.daily_rate, seed)
    assert h.num_stores * h.num_days >= 1000
    assert (h["stock"] >= 0).all() and h["orders"].sum() > 0 and h["lost"].sum() > 0
    np.testing.assert_array_equal(h["stock"][:, 1:], h["stock"][:, :-1] + h["received"][:, 1:] - h["sold"][:, 1:])
    lead = sd.config.lead_time_days
    np.testing.assert_array_equal(h["received"][:, lead:], h["ordered"][:, :-lead])  # every unit exactly L days later
    assert (h["received"][:, :lead] == 0).all()
