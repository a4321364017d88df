"""Policies with explicit distributions and logged episodes: exact propensities, seeding, agreement with the harness."""

from __future__ import annotations

import numpy as np
import pytest

from agents.baselines import GreedyPolicy, PopularityPolicy
from agents.evaluation import evaluate, make_eval_env
from agents.offline_data import collect
from agents.propensity import OneHotPolicy, SoftmaxPolicy, UniformPolicy, sample_rows
from ecomsim.envs import EcomVectorEnv
from ecomsim.registration import env_kwargs

REF = env_kwargs("ecomsim/Recommend-v0", user_model="reference")


def test_sample_rows_follows_the_distribution_and_never_picks_zero_mass() -> None:
    rng = np.random.default_rng(0)
    p = np.array([0.5, 0.0, 0.3, 0.2])
    n = 40_000
    picks = sample_rows(np.tile(p, (n, 1)), rng.random(n))
    share = np.bincount(picks, minlength=4) / n
    assert share[1] == 0
    # binomial standard error <= 0.0025 at n = 40k: 4 SE
    np.testing.assert_allclose(share, p, atol=0.01)
    # a row whose total rounds below u still lands on a candidate of positive mass
    assert sample_rows(np.array([[0.3, 0.7 - 1e-12, 0.0]]), np.array([1 - 1e-15]))[0] == 1


def test_softmax_policy_distribution_and_validation() -> None:
    env = EcomVectorEnv(num_envs=8, **REF)
    obs, _ = env.reset(seed=0)
    pol = SoftmaxPolicy("greedy", temperature=0.5, epsilon=0.2)
    pol.reset(env.core, np.random.default_rng(0))
    p = pol.probs(obs)
    assert p.shape == (8, 20)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    assert (p >= 0.2 / 20 - 1e-15).all()
    # the most likely candidate is the greedy baseline's pick
    greedy = GreedyPolicy()
    greedy.reset(env.core, np.random.default_rng(0))
    np.testing.assert_array_equal(p.argmax(axis=1), greedy.act(obs))
    with pytest.raises(ValueError, match="scores must be one of .* Did you mean 'greedy'"):
        SoftmaxPolicy("gredy")
    with pytest.raises(ValueError, match=r"epsilon must be a number in \[0, 1\], got 1.5"):
        SoftmaxPolicy(epsilon=1.5)
    with pytest.raises(ValueError, match=r"temperature must be a number in \(0, 1000\], got 0"):
        SoftmaxPolicy(temperature=0)
    with pytest.raises(ValueError, match="inner must be a deterministic baseline"):
        OneHotPolicy("random")
    slate = EcomVectorEnv(num_envs=2, **env_kwargs("ecomsim/Slate-v0", user_model="reference"))
    with pytest.raises(ValueError, match="needs one item per step .* got slate_size=5"):
        UniformPolicy().reset(slate.core, np.random.default_rng(0))


def test_one_hot_policy_acts_like_its_baseline_online() -> None:
    a = evaluate(OneHotPolicy("popularity"), make_eval_env(REF, 32), 200, seed=3)
    b = evaluate(PopularityPolicy(), make_eval_env(REF, 32), 200, seed=3)
    assert a.metrics == b.metrics


def test_collect_is_exact_seeded_and_agrees_with_the_evaluation_harness() -> None:
    pol = lambda: SoftmaxPolicy("greedy", 0.5, 0.1)  # noqa: E731
    logs = collect(pol(), REF, 300, seed=7, num_envs=64,
                   targets={"logging": pol(), "greedy": OneHotPolicy("greedy")}, oracle=True)
    s, e = logs.num_steps, logs.num_episodes
    assert e == 300 and logs.starts[-1] == s and logs.lengths.min() >= 1
    rows = np.arange(s)
    np.testing.assert_array_equal(logs.propensity, logs.logging_probs[rows, logs.actions])
    # the logging policy, asked again at the same states, gives the same distribution
    np.testing.assert_allclose(logs.target_probs["logging"], logs.logging_probs, rtol=0, atol=1e-15)
    ends = logs.starts[1:] - 1
    assert (logs.terminated | logs.truncated)[ends].all()
    inner = np.setdiff1d(rows, ends)
    assert not (logs.terminated | logs.truncated)[inner].any()
    assert (logs.step_in_episode[logs.starts[:-1]] == 0).all()
    assert (logs.reset_infos["session_length"] == 0).all() and (logs.infos["session_length"][ends] == logs.lengths).all()
    assert logs.oracle_purchase.shape == (s, 20) and logs.final_obs.shape == (e, logs.obs.shape[1])
    # same seed, same log; the sessions are the ones the harness scores with the same seed
    again = collect(pol(), REF, 300, seed=7, num_envs=64)
    np.testing.assert_array_equal(again.obs, logs.obs)
    np.testing.assert_array_equal(again.actions, logs.actions)
    res = evaluate(pol(), make_eval_env(REF, 64), 300, seed=7)
    assert res.metrics["conversion_rate"].value == np.mean(np.add.reduceat(logs.infos["purchases"], logs.starts[:-1]) > 0)
    assert res.metrics["session_length"].value == logs.lengths.mean()
    other = collect(pol(), REF, 300, seed=8, num_envs=64)
    assert not np.array_equal(other.actions[:100], logs.actions[:100])
    head = logs.head(10)
    assert head.num_episodes == 10 and head.num_steps == logs.starts[10]
    with pytest.raises(ValueError, match=r"num_sessions must be a positive integer, got 0"):
        collect(pol(), REF, 0)
    with pytest.raises(ValueError, match="mode='recommend'"):
        collect(pol(), env_kwargs("ecomsim/Slate-v0"), 5)
