"""``ecomsim/Inventory-v0``: seeded runs identical, the store's books over 1,000 random store-days, and bad input
named (issue 13's contract for the env; the checkers are in ``tests/store/test_checkers.py``)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import ecomsim  # noqa: F401  (registers the ids)
from ecomsim.store.inventory import InventoryEnv

SMALL = {"user_model": "reference", "sessions_per_day": 20}  # a store-day of ~20 sessions: the quick suite's size


def _episode(seed: int) -> tuple[np.ndarray, np.ndarray]:
    env = gym.make("ecomsim/Inventory-v0", **SMALL, horizon_days=30)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    seen, rewards = [obs], []
    while True:
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        seen.append(obs)
        rewards.append(reward)
        assert not terminated
        if truncated:
            return np.stack(seen), np.asarray(rewards)


def test_seeded_runs_are_identical_and_seeds_differ() -> None:
    (obs_a, rew_a), (obs_b, rew_b) = _episode(3), _episode(3)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rew_a, rew_b)
    assert not np.array_equal(rew_a, _episode(4)[1])


def test_a_thousand_random_store_days_keep_the_books() -> None:
    """Random actions over 1,000 store-days (several episodes): stock never negative, every day's closing stock is
    the opening stock plus deliveries minus sales, sales never exceed demand, and an order arrives after its lead
    time (units ordered on day t are received on day t + 3)."""
    env = InventoryEnv(**SMALL, horizon_days=250, lead_time_days=3)
    env.action_space.seed(0)
    days = 0
    for seed in range(4):
        env.reset(seed=seed)
        state = env.state
        close = state.stock.sum() - state.received.sum() + state.sold.sum()  # day 0's opening stock
        ordered: dict[int, int] = {}
        while True:
            assert (state.stock >= 0).all()
            opening = close + state.received.sum()
            assert state.stock.sum() == opening - state.sold.sum()
            assert (state.sold <= state.demand).all()
            assert state.received.sum() == ordered.get(state.day - 3, 0)
            day = state.day
            _, _, _, truncated, info = env.step(env.action_space.sample())
            ordered[day] = int(info["ordered"])
            close = int(info["stock"])
            days += 1
            if truncated:
                break
    assert days >= 1000 and sum(ordered.values()) > 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lead_time_days": -1}, r"lead_time_days must be in \[1, 365\], got -1"),
        ({"sessions_per_day": 0}, r"sessions_per_day must be in \[1, 100000000\], got 0"),
        ({"holding_cost_rate": -0.1}, r"holding_cost_rate must be in \[0.0, 1.0\], got -0.1"),
        ({"sessions_per_dya": 5}, r"unknown Inventory-v0 option 'sessions_per_dya'.*sessions_per_day"),
    ],
)
def test_bad_options_name_field_and_value(kwargs, match) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        InventoryEnv(**{**SMALL, **kwargs})


@pytest.mark.parametrize(
    "action, match",
    [
        ([np.nan] * 8, r"must be a number of units in \[0, max_order_units=1000\], got nan"),
        ([-1.0] + [0.0] * 7, r"must be a number of units in \[0, max_order_units=1000\], got -1.0"),
        ([1001.0] + [0.0] * 7, r"must be a number of units in \[0, max_order_units=1000\], got 1001.0"),
    ],
)
def test_bad_order_quantities_name_group_and_value(action, match) -> None:
    env = InventoryEnv(**SMALL, action="units", max_order_units=1000)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(np.asarray(action))


def test_a_ladder_level_over_the_cap_is_an_error_not_clipped() -> None:
    env = InventoryEnv(**SMALL, max_order_units=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"above max_order_units=2 \(rung 9: 42 days of planned demand\)"):
        env.step(np.full(env.groups.num_groups, 9))
