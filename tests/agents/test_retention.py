"""Retention baselines and their scoring (agents.retention), on the reference world."""

from __future__ import annotations

import numpy as np
import pytest

from agents.retention import (RETENTION_BASELINES, ChurnRule, baseline, compare_retention_policies, retained,
                              retention_scores, score_customers)
from ecomsim.lifecycle.retention import CHURN_RISK_INDEX, OBS_SIZE, RetentionEnv


@pytest.fixture(scope="module")
def env() -> RetentionEnv:
    return RetentionEnv(user_model="reference")


def test_baselines_choose_their_actions(env):
    cfg = env.config
    obs = np.zeros((2, OBS_SIZE), dtype=np.float32)
    obs[1, CHURN_RISK_INDEX] = 0.95
    decoded = {name: [cfg.decode(a) for a in baseline(name, cfg, threshold=0.9, strategy="margin").act(obs)]
               for name in RETENTION_BASELINES}
    pop, margin = cfg.strategies.index("popularity"), cfg.strategies.index("margin")
    assert decoded["never_offer"] == [(0, 0, pop)] * 2
    assert decoded["always_10"] == [(cfg.offers.index(0.10), 0, pop)] * 2
    assert decoded["churn_rule"] == [(0, 0, pop), (cfg.offers.index(0.10), cfg.message_plans.index((14,)), pop)]
    assert decoded["myopic"] == [(0, 0, margin)] * 2
    with pytest.raises(ValueError, match="policy.*nevr_offer.*Did you mean 'never_offer'"):
        baseline("nevr_offer", cfg)
    with pytest.raises(ValueError, match="threshold.*1.5"):
        ChurnRule(cfg, 1.5)
    with pytest.raises(ValueError, match="offers.*0.1"):
        baseline("always_10", RetentionEnv(user_model="reference", offers=(0.0, 0.2)).config)


def test_records_add_up_to_the_episodes(env):
    seeds = [0, 1, 2, 3, 4]
    rec = score_customers(env, baseline("always_10", env.config).act, seeds, batch_size=3)  # two batches
    for i, seed in enumerate(seeds):
        env.reset(seed=seed)
        profit, done = 0.0, False
        while not done:
            _, r, term, trunc, info = env.step(baseline("always_10", env.config).action)
            profit += r
            done = term or trunc
        assert rec.profit[i] == pytest.approx(profit)
        assert rec.churned[i] == info["churned"] and rec.end_day[i] == info["day"]
    assert np.all(rec.coupon_cost >= 0) and np.all(rec.message_cost == 0)


def test_retention_shares_and_intervals():
    from agents.retention import CustomerRecords

    z = np.zeros(4)
    rec = CustomerRecords(profit=np.array([1.0, 2.0, 3.0, 4.0]), revenue=z, visits=z, purchases=z,
                          end_day=np.array([50, 100, 365, 200]), churned=np.array([True, True, False, True]),
                          coupon_cost=z, message_cost=z)
    np.testing.assert_array_equal(retained(rec, 90), [False, True, True, True])
    s = retention_scores(rec)
    assert s["retention_day_90"]["value"] == 0.75 and s["retention_day_180"]["value"] == 0.5
    assert s["retention_day_365"]["value"] == 0.25 and s["profit_per_customer"]["value"] == 2.5
    assert s["retention_day_90"]["low"] < 0.75 < s["retention_day_90"]["high"]


def test_compare_tunes_on_other_customers(env):
    with pytest.raises(ValueError, match="disjoint"):
        compare_retention_policies(env, [0, 1], [1, 2], log=lambda s: None)
    out = compare_retention_policies(env, [0, 1, 2], [10, 11], log=lambda s: None)
    assert set(out["scores"]) == set(RETENTION_BASELINES)
    assert out["tuning"]["myopic_strategy"] in env.config.strategies
    for s in out["scores"].values():
        assert s["profit_per_customer"]["n"] == 3 and s["retention_day_365"]["n"] == 3


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_sb3_learns_a_few_steps_on_the_vector_env(algo):
    """Both algorithms take the env as it is (Discrete actions, a Box observation)."""
    import gymnasium as gym
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    env = DummyVecEnv([lambda: gym.make("ecomsim/Retention-v0", user_model="reference", horizon_days=60)] * 2)
    model = (PPO("MlpPolicy", env, n_steps=16, batch_size=16, n_epochs=1, seed=0) if algo == "ppo"
             else DQN("MlpPolicy", env, learning_starts=8, train_freq=4, buffer_size=100, seed=0))
    model.learn(48)
    actions, _ = model.predict(env.reset(), deterministic=True)
    assert actions.shape == (2,) and np.all((actions >= 0) & (actions < 48))
