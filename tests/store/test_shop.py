"""Stock in the sessions (``EnvConfig.inventory``): the store's books hold, the last unit goes to the lowest row,
an empty shelf is shown but never sold, draws stay aligned, masks and observations say the stock."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import ecomsim  # noqa: F401  (registers the ids)
from ecomsim.envs import EcomEnv, EcomVectorEnv
from ecomsim.shoppers.base import Reaction, ShopperModel
from ecomsim.shoppers.reference import ReferenceParams, ReferenceWorld
from ecomsim.sim.stock import candidate_mask, demand_probability, stock_state, stocked_reaction

REF = {"user_model": "reference"}


class SureShopper(ShopperModel):
    """Clicks, carts and buys whatever is shown with probability ``p``; leaves with probability ``h``."""

    name = "sure"

    def __init__(self, p: float = 1.0, h: float = 0.0) -> None:
        self.p, self.h = p, h

    def reaction(self, items, positions, rows=None) -> Reaction:
        n, k = items.shape
        full = np.full((n, k), self.p)
        return Reaction(click=full, cart=full, purchase=full, leave=np.full((n, 3), self.h))


def _run(env, steps: int, rng: np.random.Generator) -> tuple[int, int]:
    """Random actions; returns the units the sessions bought and the lost sales they met."""
    bought = lost = 0
    for _ in range(steps):
        actions = env.action_space.sample() if env.config.mode == "slate" else rng.integers(0, 20, env.num_envs)
        _, _, _, _, info = env.step(actions)
        bought += int(info["purchased"].sum())
        lost += int(info["lost"].sum())
        assert (env.core.stock.stock >= 0).all()
    return bought, lost


@pytest.mark.parametrize("user_model", ["reference", "dnn"])
def test_books_hold_stock_never_negative_sales_equal_depletion(user_model: str) -> None:
    """Every day: close = previous close + received - sold; sessions' units bought = the store's units sold."""
    env = EcomVectorEnv(num_envs=64, user_model=user_model,
                        inventory={"sessions_per_day": 40, "initial_fill_days": 3.0, "review_days": 2})
    env.reset(seed=5)
    store = env.core.stock
    start = store.stock.copy()
    bought, lost = _run(env, 400, np.random.default_rng(0))
    days = store.accounts
    assert len(days) >= 20 and sum(int(a.received.sum()) for a in days) > 0  # deliveries happened
    sold = sum(int(a.sold.sum()) for a in days) + int(store.state.sold.sum())
    received = sum(int(a.received.sum()) for a in days) + int(store.state.received.sum())
    assert bought == sold and bought > 0  # no other shoppers: the sessions' purchases are all the sales
    assert int(store.stock.sum()) == int(start.sum()) + received - sold
    assert lost == sum(int(a.lost.sum()) for a in days) + int((store.state.demand - store.state.sold).sum()) > 0
    level = start.sum()
    for a in days:  # day by day, group by group
        level = level + a.received.sum() - a.sold.sum()
        assert a.stock.sum() == level


def test_deliveries_arrive_on_their_day() -> None:
    lead = [1, 2, 3, 4, 5, 6, 7, 2]
    env = EcomVectorEnv(num_envs=32, **REF, inventory={"sessions_per_day": 30, "lead_time_days": lead,
                                                       "review_days": 1, "initial_fill_days": 2.0})
    env.reset(seed=1)
    _run(env, 600, np.random.default_rng(1))
    days = env.core.stock.accounts
    ordered = np.stack([a.ordered[0] for a in days])  # (D, G) units ordered at each close
    received = np.stack([a.received[0] for a in days])  # (D, G) units received at each opening
    assert ordered.sum() > 0
    for g, lag in enumerate(lead):
        np.testing.assert_array_equal(received[lag:, g], ordered[:-lag, g])
        assert (received[:lag, g] == 0).all()


def test_the_last_unit_goes_to_the_lowest_row_and_an_empty_shelf_is_never_sold() -> None:
    env = EcomVectorEnv(num_envs=6, shopper_obj=SureShopper(1.0), inventory={"low_stock_units": 0})
    env.reset(seed=2)
    core = env.core
    item = int(core.candidates[0, 0])
    core.candidates[:, 0] = item  # every session is shown the same item
    core.stock.stock[item] = 2
    _, _, _, _, info = env.step(np.zeros(6, dtype=np.int64))
    assert info["purchased"][:, 0].tolist() == [True, True, False, False, False, False]  # rows 0 and 1 got the units
    assert info["lost"][:, 0].tolist() == [False, False, True, True, True, True]
    assert info["unavailable"][:, 0].tolist() == [False, False, True, True, True, True]
    assert info["clicked"][:, 0].all() and not info["carted"][2:, 0].any()  # clicked, but no cart on an empty shelf
    assert core.stock.stock[item] == 0 and info["revenue"][2:].sum() == 0.0


def test_a_click_on_an_empty_shelf_raises_the_leave_hazard() -> None:
    for oos_leave, left in ((1.0, True), (0.0, False)):
        env = EcomVectorEnv(num_envs=4, shopper_obj=SureShopper(1.0, h=0.0), inventory={"oos_leave": oos_leave})
        env.reset(seed=3)
        env.core.stock.stock[env.core.candidates[:, 0]] = 0
        _, _, terminated, _, info = env.step(np.zeros(4, dtype=np.int64))
        assert info["unavailable"][:, 0].all() and (terminated == left).all()


def test_draws_per_step_are_the_same_with_and_without_stock() -> None:
    plain, stocked = EcomVectorEnv(num_envs=16, **REF), EcomVectorEnv(num_envs=16, **REF, inventory={})
    for env in (plain, stocked):
        env.reset(seed=4)
        for _ in range(30):
            env.step(np.zeros(16, dtype=np.int64))
    np.testing.assert_array_equal(plain.core.state.streams.counter, stocked.core.state.streams.counter)


def test_observation_and_masks_carry_each_candidates_stock() -> None:
    env = EcomVectorEnv(num_envs=32, **REF, inventory={"initial_fill_days": 3.0, "low_stock_units": 2})
    obs, info = env.reset(seed=6)
    lay, core = env.core.layout, env.core
    assert lay.candidate_names[-2:] == ["out_of_stock", "low_stock"] and env.single_observation_space.contains(obs[0])
    width = len(lay.candidate_names)
    for _ in range(25):
        units = core.stock.stock[core.candidates]  # (N, M)
        out = obs[:, lay.context_dim + width * np.arange(20) + width - 2]
        low = obs[:, lay.context_dim + width * np.arange(20) + width - 1]
        np.testing.assert_array_equal(out, units <= 0)
        np.testing.assert_array_equal(low, (units > 0) & (units <= 2))
        state = stock_state(units, 2)
        assert ((state == 0) == (units <= 0)).all() and ((state == 1) == (low > 0)).all()
        mask = candidate_mask(core.candidates, core.stock.stock)
        np.testing.assert_array_equal(info["action_mask"], mask)
        np.testing.assert_array_equal(env.action_masks(), mask)
        assert (mask == (units > 0))[(units > 0).any(axis=1)].all() and mask.any(axis=1).all()
        obs, _, _, _, info = env.step(np.random.default_rng(0).integers(0, 20, 32))
        assert all(env.single_observation_space.contains(o) for o in obs)


def test_observe_profit_adds_each_candidates_unit_profit_share() -> None:
    """``observe_profit``: one more candidate feature, x / (1 + x) of unit_profit / price at today's cover; off by
    default (the inventory observation is the one it was)."""
    plain = EcomVectorEnv(num_envs=8, **REF, inventory={})
    env = EcomVectorEnv(num_envs=8, **REF, reward="profit",
                        inventory={"observe_profit": True, "initial_fill_days": 60.0, "min_fill_units": 0.0})
    assert plain.core.layout.candidate_names[-1] == "low_stock"
    lay, core = env.core.layout, env.core
    assert lay.candidate_names[-3:] == ["out_of_stock", "low_stock", "unit_profit_share"]
    assert lay.obs_dim == plain.core.layout.obs_dim + 20
    obs, _ = env.reset(seed=1)
    width, price = len(lay.candidate_names), core.catalog.price
    seen = []
    for _ in range(30):
        x = core.stock.unit_profit[core.candidates] / price[core.candidates]
        got = obs[:, lay.context_dim + width * np.arange(20) + width - 1]
        np.testing.assert_allclose(got, x / (1.0 + x), rtol=1e-6)
        seen.append(got)
        assert all(env.single_observation_space.contains(o) for o in obs)
        obs, *_ = env.step(np.random.default_rng(0).integers(0, 20, 8))
    assert np.ptp(np.concatenate(seen)) > 0.05  # overstocked items are worth more than their margin
    with pytest.raises(TypeError, match="observe_profit must be true or false, got 1"):
        EcomVectorEnv(num_envs=1, **REF, inventory={"observe_profit": 1})


def test_a_masked_policy_never_shows_an_item_out_of_stock() -> None:
    """A single env without other shoppers: the stock at the decision is the stock the step meets."""
    env = gym.make("ecomsim/Recommend-v0", **REF, inventory={"replenishment": "none"})
    obs, info = env.reset(seed=7)
    core, rng = env.unwrapped.core, np.random.default_rng(0)
    checked = masked = 0
    for _ in range(3000):
        mask = env.unwrapped.action_masks()
        np.testing.assert_array_equal(mask, info["action_mask"])
        all_out = (core.stock.stock[core.candidates[0]] <= 0).all()  # then the mask allows every candidate
        obs, _, term, trunc, info = env.step(int(rng.choice(np.flatnonzero(mask))))
        if not all_out:
            assert not info["unavailable"].any()
            checked += 1
            masked += int(not mask.all())
        if term or trunc:
            obs, info = env.reset()
    assert checked > 1000 and masked > 1000  # the mask left candidates out, and none shown was out of stock


def test_other_shoppers_buy_as_background_and_a_single_env_keeps_its_store_across_episodes() -> None:
    env = EcomEnv(**REF, inventory={"background_share": 0.9, "sessions_per_day": 100})
    env.reset(seed=8)
    store = env.core.stock
    for _ in range(40):  # a day is 0.1 * 100 sessions * 10 steps = 100 steps of this env
        term = trunc = False
        while not (term or trunc):
            _, _, term, trunc, _ = env.step(0)
        env.reset()  # unseeded: the store lives on
    # ~3.6 units a day of other shoppers' demand (0.9 * 100 sessions * 0.04), most of it on the long tail the
    # store does not stock: demand is booked, sold or lost
    assert store.day >= 3 and sum(int(a.demand.sum()) for a in store.accounts) >= 6
    env.reset(seed=8)  # seeded: the store restarts
    assert store.day == 0 and not store.accounts


def test_reference_world_pays_patience_for_an_empty_shelf() -> None:
    env = EcomVectorEnv(num_envs=3, **REF)
    env.reset(seed=9)
    world = env.core.shopper
    assert isinstance(world, ReferenceWorld) and ReferenceParams().k_oos == 1.0
    items = env.core.candidates[:, :1]
    clicked = np.array([[True], [True], [False]])
    args = (items, np.ones((3, 1), bool), clicked, np.zeros((3, 1), bool), np.zeros((3, 1), bool))
    latent = ("patience", "fatigue", "intent", "interest")
    before = {name: getattr(world, name).copy() for name in latent}
    world.update(*args)
    after_stocked = world.patience.copy()
    for name in latent:
        getattr(world, name)[:] = before[name]
    world.update(*args, unavailable=np.array([[True], [False], [True]]))
    np.testing.assert_allclose(world.patience - after_stocked, [-1.0, 0.0, 0.0])  # only a click on an empty shelf


def test_numpy_stock_rules_match_the_kernel() -> None:
    """P(cart) is 0 on an empty shelf, the purchase is lifted at low stock; demand keeps the lost sales."""
    r = Reaction(click=np.full((1, 3), 0.5), cart=np.full((1, 3), 0.5), purchase=np.full((1, 3), 0.95),
                 leave=np.zeros((1, 3)))
    stock, params = np.array([0, 2, 9]), np.array([3.0, 1.1, 0.2])
    items = np.array([[0, 1, 2]])
    s = stocked_reaction(r, items, stock, params)
    np.testing.assert_allclose(s.purchase_total, [[0.0, 0.25, 0.25 * 0.95]])
    np.testing.assert_allclose(demand_probability(r, items, stock, params), [[0.25 * 0.95, 0.25, 0.25 * 0.95]])
    env = EcomVectorEnv(num_envs=4000, shopper_obj=SureShopper(0.5), inventory={"low_stock_units": 3,
                                                                                "scarcity_lift": 0.5})
    env.reset(seed=10)
    core = env.core
    core.stock.stock[:] = 10 ** 6
    item = int(core.candidates[0, 0])
    core.candidates[:, 0] = item
    core.stock.stock[item] = 3  # low: P(purchase | cart) = min(1, 0.5 * 1.5) = 0.75
    _, _, _, _, info = env.step(np.zeros(4000, dtype=np.int64))
    # 3 units sold to the first buyers, the rest lost: sales + lost = demand, P = 0.5 * 0.5 * 0.75 until the
    # stock is gone (the lift holds while 1..3 units are left) and 0.5 ** 3 = 0.125 after; 4 standard errors
    demand = int(info["purchased"].sum() + info["lost"].sum())
    first = np.flatnonzero(info["purchased"][:, 0])
    assert first.size == 3 and info["lost"][: first[-1], 0].sum() == 0
    n_after = 4000 - first[-1] - 1
    expected = 3 + n_after * 0.125
    assert abs(demand - expected) < 4 * np.sqrt(n_after * 0.125 * 0.875)


def test_scoring_reports_the_stores_books_per_day() -> None:
    """``agents.evaluation.evaluate`` with inventory: the scoring store's closed days, per day, in the funnel."""
    from agents.evaluation import STORE_BOOKS, evaluate
    from agents.registry import policy_factory

    env = EcomVectorEnv(num_envs=16, user_model="reference", inventory={"sessions_per_day": 20, "review_days": 2})
    result = evaluate(policy_factory("popularity")(), env, 300, seed=3)
    days = env.core.stock.accounts
    books = result.funnel
    assert books["store_days"] == len(days) >= 5
    for name in STORE_BOOKS + ("sold", "lost"):
        total = sum(float(getattr(a, name).sum()) for a in days)
        assert books[f"store_{name}_per_day"] == pytest.approx(total / len(days))
    cogs = sum(float(a.cogs.sum()) for a in days) / len(days)
    assert books["store_profit_per_day"] == pytest.approx(
        books["store_revenue_per_day"] - cogs - books["store_holding_per_day"] - books["store_ordering_per_day"]
        - books["store_stockout_cost_per_day"])
    assert books["store_sold_per_day"] > 0 and books["store_lost_per_day"] > 0  # the long tail starts empty
    assert 0 < books["store_cover_days_sold"] <= 365


def test_profit_reward_is_margin_plus_the_holding_its_sale_saves() -> None:
    """``reward="profit"``: each unit bought pays ``margin + holding_cost_rate * unit_cost * min(cover, 365)``."""
    env = EcomVectorEnv(num_envs=32, user_model="reference", reward="profit",
                        inventory={"initial_fill_days": 60.0, "min_fill_units": 0.0})
    env.reset(seed=2)
    store, rng, paid = env.core.stock, np.random.default_rng(1), 0
    for _ in range(40):
        _, reward, _, _, info = env.step(rng.integers(0, 20, env.num_envs))
        bought = np.asarray(info["items"])[np.asarray(info["purchased"], dtype=bool)]
        holding = store.config.holding_cost_rate * store.items.unit_cost[bought]
        assert float(reward.sum()) == pytest.approx(float((store.items.unit_margin[bought] + holding
                                                          * store.cover[bought]).sum()))
        paid += bought.size
    assert paid > 0 and store.cover.max() == 365.0  # the long tail's one unit lasts longer than the cap
