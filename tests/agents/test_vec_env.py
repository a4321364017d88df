"""The native SB3 VecEnv equals DummyVecEnv of single envs, step by step."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from threadpoolctl import threadpool_limits
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

import ecomsim  # noqa: F401  (registers the ids)
from agents.vec_env import EcomSB3VecEnv

STEP_KEYS = ("clicks", "carts", "purchases", "revenue", "left", "session_impressions", "session_clicks",
             "session_purchases", "session_revenue", "session_length")

threadpool_limits(1)  # small matrices: extra BLAS threads only spin on a shared CPU


def _dummy(env_id: str, n: int, **kwargs) -> DummyVecEnv:
    return DummyVecEnv([lambda: gym.make(env_id, **kwargs) for _ in range(n)])


@pytest.mark.parametrize("env_id", ["ecomsim/Recommend-v0", "ecomsim/Slate-v0"])
def test_equals_dummy_vec_env_step_by_step(env_id: str) -> None:
    n, seed = 4, 11
    ours = EcomSB3VecEnv(n, env_id=env_id, max_steps=8)  # short sessions: both kinds of episode end
    ref = _dummy(env_id, n, max_steps=8)
    ours.seed(seed)
    ref.seed(seed)
    o1, o2 = ours.reset(), ref.reset()
    np.testing.assert_array_equal(o1, o2)
    rng = np.random.default_rng(0)
    ends = truncs = 0
    for _ in range(120):
        actions = np.stack([ours.action_space.sample() for _ in range(n)]) if env_id.endswith("Slate-v0") \
            else rng.integers(0, 20, size=n)
        o1, r1, d1, i1 = ours.step(actions)
        o2, r2, d2, i2 = ref.step(actions)
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(d1, d2)
        assert r1.dtype == r2.dtype and o1.dtype == o2.dtype
        for a, b in zip(i1, i2):
            for key in STEP_KEYS:
                assert a[key] == b[key], key
            np.testing.assert_array_equal(a["items"], b["items"])
            assert ("terminal_observation" in a) == ("terminal_observation" in b)
            if "terminal_observation" in a:
                np.testing.assert_array_equal(a["terminal_observation"], b["terminal_observation"])
                assert a["TimeLimit.truncated"] == b["TimeLimit.truncated"]
                ends += 1
                truncs += a["TimeLimit.truncated"]
    assert ends > 10 and 0 < truncs < ends


def test_episode_stats_match_vec_monitor() -> None:
    n = 3
    ours = EcomSB3VecEnv(n, max_steps=6)
    ref = VecMonitor(_dummy("ecomsim/Recommend-v0", n, max_steps=6))
    ours.seed(5)
    ref.seed(5)
    ours.reset()
    ref.reset()
    seen = 0
    for t in range(60):
        a = np.full(n, t % 20)
        _, _, _, i1 = ours.step(a)
        _, _, _, i2 = ref.step(a)
        for a_, b_ in zip(i1, i2):
            assert ("episode" in a_) == ("episode" in b_)
            if "episode" in a_:
                assert a_["episode"]["r"] == pytest.approx(b_["episode"]["r"])
                assert a_["episode"]["l"] == b_["episode"]["l"]
                seen += 1
    assert seen > 5


def test_reset_without_seed_continues_streams_like_single_envs() -> None:
    ours = EcomSB3VecEnv(2)
    ref = _dummy("ecomsim/Recommend-v0", 2)
    ours.seed(3)
    ref.seed(3)
    ours.reset(), ref.reset()
    for _ in range(5):
        ours.step(np.zeros(2, dtype=np.int64)), ref.step(np.zeros(2, dtype=np.int64))
    np.testing.assert_array_equal(ours.reset(), ref.reset())  # second reset, no seed
    unseeded = EcomSB3VecEnv(2)
    assert not np.array_equal(unseeded.reset(), EcomSB3VecEnv(2).reset())


def test_attrs_methods_and_errors() -> None:
    env = EcomSB3VecEnv(3, env_id="ecomsim/Slate-v0", channel="web")
    env.reset()
    assert env.get_attr("slate_size") == [5, 5, 5]
    assert env.get_attr("channel", indices=1) == ["web"]
    assert env.get_attr("step_count") == [0, 0, 0]
    env.set_attr("step_count", 7, indices=[2])
    assert env.get_attr("step_count") == [0, 0, 7]
    assert env.env_is_wrapped(Monitor) == [True] * 3
    assert env.env_is_wrapped(gym.wrappers.TimeLimit) == [False] * 3
    assert len(env.env_method("render")) == 3
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        env.get_attr("nope")
    with pytest.raises(AttributeError, match="frozen"):
        env.set_attr("max_steps", 3)
    with pytest.raises(ValueError, match=r"actions must have shape \(num_envs=3, slate_size=5\), got \(3,\)"):
        env.step(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="env_id must be one of"):
        EcomSB3VecEnv(2, env_id="ecomsim/Recomend-v0")
    with pytest.raises(TypeError, match="Did you mean 'channel'"):
        EcomSB3VecEnv(2, chanel="web")


def test_sb3_ppo_runs_on_it() -> None:
    from stable_baselines3 import PPO

    env = EcomSB3VecEnv(4)
    model = PPO("MlpPolicy", env, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(128)
    assert model.ep_info_buffer and "r" in model.ep_info_buffer[0]


def test_accepts_and_refuses_as_the_native_vector_env() -> None:
    """numpy integers as counts, seeds and actions; floats, whole or not, and other shapes refused by name."""
    env = EcomSB3VecEnv(np.int64(4), user_model="reference")
    assert type(env.num_envs) is int and env.num_envs == 4
    env.seed(np.int64(3))
    first = env.reset()
    native = gym.make_vec("ecomsim/Recommend-v0", num_envs=4, user_model="reference")
    np.testing.assert_array_equal(first, native.reset(seed=3)[0])
    env.step(np.array([1, 2, 3, 4], dtype=np.uint8))
    with pytest.raises(TypeError, match=r"actions must be integer candidate indexes in \[0, 19\], got dtype float64"):
        env.step(np.array([1.0, 2.0, 3.0, 4.0]))
    with pytest.raises(ValueError, match=r"actions must have shape \(num_envs=4,\), got \(4, 1\)"):
        env.step(np.zeros((4, 1), dtype=np.int64))
    env.seed(1.5)
    with pytest.raises(TypeError, match=r"seed of sub-env 0 must be an integer >= 0 or None, got 1\.5 \(float\)"):
        env.reset()
    with pytest.raises(TypeError, match=r"num_envs must be an integer >= 1, got 2\.0 \(float\)"):
        EcomSB3VecEnv(2.0)
