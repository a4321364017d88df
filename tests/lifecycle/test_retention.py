"""ecomsim/Retention-v0: checkers, seeding, bad input, the profit arithmetic and how episodes end."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

import ecomsim  # noqa: F401  (registers the ids)
from ecomsim.lifecycle.retention import CHURN_RISK_INDEX, OBS_SIZE, RetentionEnv
from ecomsim.lifecycle.retention_config import RetentionConfig
from ecomsim.lifecycle.strategies import STRATEGY_NAMES

REF = {"user_model": "reference"}  # the reference world: same env, faster sessions


@pytest.fixture(scope="module")
def env() -> RetentionEnv:
    return RetentionEnv(**REF)


def rollout(env: RetentionEnv, seed: int, actions: np.random.Generator | int) -> list:
    """Every step of one episode as ``(obs, reward, terminated, truncated, info)``; ``actions`` a fixed action or a
    generator drawing them."""
    obs, info = env.reset(seed=seed)
    steps = [(obs, 0.0, False, False, info)]
    done = False
    while not done:
        a = actions if isinstance(actions, int) else int(actions.integers(env.action_space.n))
        obs, r, term, trunc, info = env.step(a)
        steps.append((obs, r, term, trunc, info))
        done = term or trunc
    return steps


def test_registered_and_both_checkers_clean():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make("ecomsim/Retention-v0")  # the default: DNN shoppers
    assert env.unwrapped.config.user_model == "dnn"
    assert env.action_space == gym.spaces.Discrete(48)
    assert env.observation_space.shape == (OBS_SIZE,)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=True)


def test_same_seed_same_episode_and_seeds_differ(env):
    a = rollout(env, 3, np.random.default_rng(0))
    b = rollout(env, 3, np.random.default_rng(0))
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x[0], y[0])
        assert x[1:4] == y[1:4] and x[4] == y[4]
    firsts = {tuple(env.reset(seed=s)[0].round(6)) for s in range(6)}
    assert len(firsts) > 1  # different customers


def test_observations_bounded_and_churn_risk_is_the_return_models(env):
    assert env.config.churn_model == "learned"  # the default: what a shop could forecast
    for seed in range(4):
        for obs, _, term, _, info in rollout(env, seed, np.random.default_rng(seed)):
            assert env.observation_space.contains(obs)
            assert obs[CHURN_RISK_INDEX] == pytest.approx(info["churn_risk"], abs=1e-6)
            if term:
                continue  # the last observation keeps the risk of the last visit (1 if she left after it)
            expected = env.batch.return_model.churn_risk(obs[None, :CHURN_RISK_INDEX], 30)[0]
            assert obs[CHURN_RISK_INDEX] == pytest.approx(expected, abs=1e-6)


def test_reference_churn_model_is_the_bayes_risk_and_changes_nothing_else(env):
    bayes = RetentionEnv(churn_model="reference", **REF)
    bayes.reset(seed=0)
    c = bayes.customer
    expected = 1.0 - bayes.lifecycle.return_probability(c, np.zeros(1, dtype=np.int64), 30)[0]
    assert bayes.churn_risk == pytest.approx(expected)
    for seed in range(3):  # same seed and actions: same life, only the churn column differs
        a = rollout(env, seed, np.random.default_rng(seed))
        b = rollout(bayes, seed, np.random.default_rng(seed))
        assert len(a) == len(b)
        for (oa, ra, *_, ia), (ob, rb, *_, ib) in zip(a, b):
            np.testing.assert_array_equal(oa[:CHURN_RISK_INDEX], ob[:CHURN_RISK_INDEX])
            assert ra == rb
            assert {k: v for k, v in ia.items() if k != "churn_risk"} == {k: v for k, v in ib.items() if k != "churn_risk"}


def test_profit_is_margin_on_list_revenue_minus_coupon_and_messages():
    """margin 0.5, always a 20% coupon and one message on day 1 at cost 1 each: every step's reward is
    0.5 * list revenue - discount - messages, the discount a fifth of list revenue when the coupon is valid."""
    env = RetentionEnv(margin=0.5, offers=(0.2,), message_plans=((1,),), strategies=("relevance",),
                       message_cost=(1.0, 1.0, 1.0), **REF)
    bought = messaged = 0
    for seed in range(40):
        for _, r, _, _, info in rollout(env, seed, 0)[1:]:
            assert info["message_cost"] == pytest.approx(1.0 * info["messages_sent"])
            lst = info["revenue"] + info["discount_cost"]
            assert r == pytest.approx(0.5 * lst - info["discount_cost"] - info["message_cost"])
            assert info["profit"] == r
            if info["purchased"]:
                bought += 1
                # the coupon is sent at each decision and valid 30 days, so it discounts every order but
                # one reached after a gap above 30 days
                if info["days_to_next_visit"] <= 30:
                    assert info["discount_cost"] == pytest.approx(0.2 * lst)
            messaged += info["messages_sent"]
            if not info["visited"]:
                assert info["revenue"] == 0.0 and r == -info["message_cost"]
        if bought >= 3 and messaged >= 3:
            break
    assert bought >= 3 and messaged >= 3, "the controlled case needs purchases and delivered messages"


def test_no_coupon_no_message_profit_is_margin_times_revenue(env):
    for seed in range(10):
        for _, r, _, _, info in rollout(env, seed, env.config.encode(0, 0, 0))[1:]:
            assert info["discount_cost"] == 0.0 and info["message_cost"] == 0.0
            assert r == pytest.approx(env.config.margin * info["revenue"])


def test_episode_ends_at_horizon_or_churn():
    env = RetentionEnv(horizon_days=60, **REF)
    ends = {"churn": 0, "horizon": 0}
    for seed in range(15):
        steps = rollout(env, seed, np.random.default_rng(seed))
        for obs, _, term, trunc, info in steps[1:-1]:
            assert not term and not trunc and info["visited"] and info["day"] <= 60
        obs, _, term, trunc, info = steps[-1]
        assert term and not trunc
        if info["churned"]:
            ends["churn"] += 1
        else:
            assert info["day"] == 60 and not info["visited"]
            ends["horizon"] += 1
        with pytest.raises(RuntimeError, match="reset"):
            env.step(0)
    assert ends["churn"] and ends["horizon"]  # both ways happen in 15 customers


def test_actions_decode_to_their_parts():
    cfg = RetentionConfig(**REF)
    seen = {cfg.decode(a) for a in range(cfg.num_actions)}
    assert len(seen) == cfg.num_actions
    for a in range(cfg.num_actions):
        assert cfg.encode(*cfg.decode(a)) == a
    env = RetentionEnv(**REF)
    env.reset(seed=1)
    _, _, _, _, info = env.step(cfg.encode(3, 2, STRATEGY_NAMES.index("margin")))
    assert info["offer"] == 0.2 and info["message_plan"] == [7, 30] and info["strategy"] == "margin"


@pytest.mark.parametrize("kwargs, match", [
    ({"strategies": ("popularity", "relevence")}, "strategies.*relevence.*Did you mean 'relevance'"),
    ({"offers": (0.0, 1.2)}, "offers.*1.2"),
    ({"offers": (0.0, -0.1)}, "offers.*-0.1"),
    ({"message_cost": (0.01, -0.02, 0.05)}, "message_cost.*-0.02"),
    ({"horizon_days": 0}, "horizon_days.*0"),
    ({"margin": 1.0}, "margin.*1.0"),
    ({"message_plans": ((0,),)}, "message_plans.*0"),
    ({"user_model": "gpt"}, "user_model.*gpt"),
    ({"churn_model": "oracle"}, "churn_model.*oracle"),
    ({"churn_days": 400}, "churn_days.*365.*400"),
])
def test_bad_options_name_field_and_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RetentionEnv(**kwargs)


def test_unknown_option_and_bad_actions(env):
    with pytest.raises(TypeError, match="horizon.*Did you mean 'horizon_days'"):
        RetentionEnv(horizon=30)
    env.reset(seed=0)
    for bad in (48, -1, 1.5, "3"):
        with pytest.raises(ValueError, match="action"):
            env.step(bad)


def same_obs(a: np.ndarray, b: np.ndarray) -> None:
    """Equal, but for the learned churn risk (last column): the return model on a batch of rows may round its
    float32 products differently from one row at a time (1e-6); the customer's life is the same bit for bit."""
    np.testing.assert_array_equal(a[:CHURN_RISK_INDEX], b[:CHURN_RISK_INDEX])
    assert a[CHURN_RISK_INDEX] == pytest.approx(b[CHURN_RISK_INDEX], abs=1e-6)


def test_make_vec_is_native_and_sub_env_i_is_a_single_env_seeded_s_plus_i():
    from ecomsim.lifecycle.retention import RetentionVectorEnv

    n, seed = 4, 7
    vec = gym.make_vec("ecomsim/Retention-v0", num_envs=n, horizon_days=120, **REF)
    assert isinstance(vec.unwrapped, RetentionVectorEnv)
    singles = [RetentionEnv(horizon_days=120, **REF) for _ in range(n)]
    obs, _ = vec.reset(seed=seed)
    for i, env in enumerate(singles):
        same_obs(obs[i], env.reset(seed=seed + i)[0])
    rng = np.random.default_rng(0)
    resets = 0
    autoreset = np.zeros(n, dtype=bool)
    for _ in range(25):
        actions = rng.integers(vec.single_action_space.n, size=n)
        obs, rewards, term, trunc, infos = vec.step(actions)
        for i, env in enumerate(singles):
            if autoreset[i]:
                o, info = env.reset()
                r, t = 0.0, False
                assert infos["_attempts"][i] and infos["attempts"][i] == info["attempts"]
                resets += 1
            else:
                o, r, t, _, info = env.step(int(actions[i]))
                assert infos["profit"][i] == r and infos["day"][i] == info["day"]
            same_obs(obs[i], o)
            assert rewards[i] == r and term[i] == t and not trunc[i]
        autoreset = term | trunc
    assert resets >= 2  # the comparison crossed episode ends
    vec.close()
