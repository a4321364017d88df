"""The native SB3 VecEnv of Retention-v0: sub-env i is a single env seeded s + i, in SB3's dialect."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.retention_vec_env import RetentionSB3VecEnv
from ecomsim.lifecycle.retention import RetentionEnv

REF = {"user_model": "reference", "horizon_days": 120}  # short lives: several episodes per row in a few steps


def same_obs(a: np.ndarray, b: np.ndarray) -> None:
    """Equal, but for the learned churn risk (last column): the return model on a batch of rows may round its
    float32 products differently from one row at a time (1e-6)."""
    np.testing.assert_array_equal(a[..., :-1], b[..., :-1])
    np.testing.assert_allclose(a[..., -1], b[..., -1], atol=1e-6)


def test_matches_dummy_vec_env_of_single_envs_step_by_step():
    n, steps = 3, 40
    native = RetentionSB3VecEnv(n, **REF)
    dummy = DummyVecEnv([lambda: Monitor(RetentionEnv(**REF)) for _ in range(n)])
    native.seed(7)
    dummy.seed(7)
    same_obs(native.reset(), dummy.reset())
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(steps):
        a = rng.integers(0, native.action_space.n, n)
        o1, r1, d1, i1 = native.step(a)
        o2, r2, d2, i2 = dummy.step(a)
        same_obs(o1, o2)
        np.testing.assert_allclose(r1, r2, rtol=1e-6)
        np.testing.assert_array_equal(d1, d2)
        for x, y in zip(i1, i2):
            for key in ("revenue", "profit", "day", "churned", "strategy", "channel", "message_plan"):
                assert x[key] == pytest.approx(y[key])
            if "terminal_observation" in y:
                same_obs(x["terminal_observation"], y["terminal_observation"])
                assert x["episode"]["r"] == pytest.approx(y["episode"]["r"], rel=1e-6)
                assert x["episode"]["l"] == y["episode"]["l"]
                ends += 1
    assert ends >= 3, "the comparison must cover episode ends and same-step resets"


def test_checks_actions_and_order_of_calls():
    env = RetentionSB3VecEnv(2, **REF)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(2, dtype=np.int64))
    env.reset()
    with pytest.raises(ValueError, match="action.*48"):
        env.step(np.array([0, 48]))
    with pytest.raises(ValueError, match="2 integers"):
        env.step(np.array([0]))
    assert env.env_is_wrapped(Monitor) == [True, True]
    assert env.get_attr("config")[0].horizon_days == 120
    with pytest.raises(AttributeError, match="lifecycle"):
        env.get_attr("lifecycle")
    with pytest.raises(ValueError, match="num_envs.*0"):
        RetentionSB3VecEnv(0)
    with pytest.raises(TypeError, match="horizon"):
        RetentionSB3VecEnv(1, horizon=3)
