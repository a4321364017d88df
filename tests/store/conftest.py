"""Shared store fixtures: real shopper demand recorded from sessions of today's env.

The demand is what reference-world shoppers buy under the popularity policy
(``agents.baselines.PopularityPolicy``) on the default catalog (2,000 items): real
session demand, over few enough sessions for the quick suite.
"""

from __future__ import annotations

import numpy as np
import pytest

from agents.baselines import PopularityPolicy
from ecomsim.envs import EcomVectorEnv
from ecomsim.store import ItemGroups, StoreConfig, StoreItems, TrafficPlan
from ecomsim.store.sessions import purchase_rates, record_trajectories

NUM_DAYS = 56
SESSIONS_PER_DAY = 300
TRAIN_SEEDS = [0, 1]
TEST_SEEDS = [2, 3]


def popularity_env(num_items: int | None = None, num_envs: int = 256):
    """A reference-world vector env and the popularity policy's ``act`` bound to it."""
    env = EcomVectorEnv(num_envs=num_envs, user_model="reference", num_items=num_items)
    policy = PopularityPolicy()
    policy.reset(env.core, np.random.default_rng(0))
    return env, policy.act


class SessionDemand:
    """Train and test trajectories of real session demand, with the store built on the same catalog."""

    def __init__(self, config: StoreConfig, num_items: int | None, num_days: int, train, test) -> None:
        env, act = popularity_env(num_items)
        self.config = config
        self.traffic = TrafficPlan(config)
        self.catalog = env.core.catalog
        self.items = StoreItems.from_catalog(self.catalog, config)
        self.groups = ItemGroups.from_config(self.catalog, config)
        self.train, self.train_sessions = record_trajectories(env, act, self.traffic, num_days, train)
        self.test, self.test_sessions = record_trajectories(env, act, self.traffic, num_days, test)
        self.rates = purchase_rates(self.train, self.train_sessions)  # units per session
        self.daily_rate = self.rates * config.sessions_per_day  # units per day, for the initial fill and priors
        self.group_mean = self.groups.totals(self.train.mean(axis=(0, 1)))  # units per day per group


@pytest.fixture(scope="session")
def session_demand() -> SessionDemand:
    config = StoreConfig(sessions_per_day=SESSIONS_PER_DAY, horizon_days=NUM_DAYS)
    return SessionDemand(config, None, NUM_DAYS, TRAIN_SEEDS, TEST_SEEDS)
