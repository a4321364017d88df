"""OPE estimators: against obp, against hand-computed values, unbiasedness (stated tolerances), the reward model."""

from __future__ import annotations

import numpy as np
import pytest

from agents.ope import (
    Padded,
    conversion_rewards,
    effective_sessions,
    estimate,
    fit_purchase_model,
    pad,
    padded_inputs,
    point_estimates,
)


def _one_step(n: int = 400, m: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    pb = rng.dirichlet(np.ones(m), size=n)
    pe = rng.dirichlet(np.ones(m), size=n)
    a = (pb.cumsum(axis=1) <= rng.random(n)[:, None]).sum(axis=1)
    r = (rng.random(n) < 0.3).astype(float)
    q = rng.random((n, m))
    rows = np.arange(n)
    p = Padded(mask=np.ones((n, 1), bool), reward=r[:, None], weight=(pe[rows, a] / pb[rows, a])[:, None],
               q_logged=q[rows, a][:, None], v_target=(pe * q).sum(axis=1)[:, None])
    return p, dict(reward=r, action=a, pscore=pb[rows, a], action_dist=pe[:, :, None]), q


def test_one_step_estimators_equal_obp() -> None:
    try:
        from obp.ope import DoublyRobust, InverseProbabilityWeighting, SelfNormalizedInverseProbabilityWeighting
    except ImportError as exc:  # obp ships --no-deps; obp.ope imports seaborn
        pytest.skip(f"obp.ope does not import ({exc}); pip install --no-deps obp==0.4.1 and seaborn")
    p, kw, q = _one_step()
    ours = point_estimates(p)
    assert ours["IPS"] == pytest.approx(InverseProbabilityWeighting().estimate_policy_value(**kw), rel=1e-12)
    assert ours["SNIPS"] == pytest.approx(SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**kw), rel=1e-12)
    assert ours["DR"] == pytest.approx(DoublyRobust().estimate_policy_value(**kw, estimated_rewards_by_reg_model=q[:, :, None]),
                                       rel=1e-12)


def test_multi_step_estimators_by_hand() -> None:
    # session 1: two steps, weights 2 then 0.5, conversion at step 1; session 2: one step, weight 0.5, converts
    starts = np.array([0, 2, 3])
    p = Padded(mask=pad(starts, np.ones(3), 0.0) > 0, reward=pad(starts, np.array([0.0, 1.0, 1.0]), 0.0),
               weight=pad(starts, np.array([2.0, 0.5, 0.5]), 1.0),
               q_logged=pad(starts, np.array([0.1, 0.4, 0.5]), 0.0), v_target=pad(starts, np.array([0.3, 0.2, 0.25]), 0.0))
    est = point_estimates(p)
    assert est["IPS"] == pytest.approx((2 * 0 + 1 * 1 + 0.5 * 1) / 2)
    # SNIPS: step 0 (0 + 0.5) / (2 + 0.5); step 1 (1 + 0) / (1 + 0.5), session 2 absorbed with weight 0.5
    assert est["SNIPS"] == pytest.approx(0.5 / 2.5 + 1 / 1.5)
    # DR: session 1 [2 (0 - .1) + .3] + [1 (1 - .4) + 2 (.2)] = 1.1, session 2 .5 (1 - .5) + .25 = .5
    assert est["DR"] == pytest.approx((1.1 + 0.5) / 2)
    assert effective_sessions(p) == pytest.approx((1 + 0.5) ** 2 / (1 + 0.25))
    zero = Padded(mask=p.mask, reward=p.reward, weight=np.zeros_like(p.weight))
    assert point_estimates(zero)["SNIPS"] == 0.0  # every weight 0: no evidence adds 0, not NaN
    c, before = conversion_rewards(np.array([0, 3, 5]), np.array([0, 1, 1, 2, 0]))
    np.testing.assert_array_equal(c, [0, 1, 0, 1, 0])
    np.testing.assert_array_equal(before, [False, False, True, False, True])


def test_ips_is_unbiased_on_a_tiny_bandit() -> None:
    # 2 contexts, 3 actions, known reward probabilities: V(pi_e) = sum_x P(x) sum_a pi_e(a|x) R(x, a)
    rng = np.random.default_rng(1)
    reward = np.array([[0.1, 0.5, 0.2], [0.7, 0.1, 0.3]])
    pb = np.array([[0.6, 0.2, 0.2], [0.2, 0.5, 0.3]])
    pe = np.array([[0.1, 0.8, 0.1], [0.7, 0.1, 0.2]])
    truth = 0.5 * (pe * reward).sum()
    reps, n = 4000, 100
    x = rng.integers(0, 2, size=(reps, n))
    a = (pb[x].cumsum(axis=2) <= rng.random((reps, n))[..., None]).sum(axis=2)
    r = rng.random((reps, n)) < reward[x, a]
    ips = (pe[x, a] / pb[x, a] * r).mean(axis=1)
    se = ips.std(ddof=1) / np.sqrt(reps)
    assert abs(ips.mean() - truth) < 4 * se, (ips.mean(), truth, se)  # tolerance: 4 standard errors of the mean
    # the same through the estimator code, on one replication
    one = Padded(mask=np.ones((n, 1), bool), reward=r[0][:, None].astype(float), weight=(pe[x[0], a[0]] / pb[x[0], a[0]])[:, None])
    assert point_estimates(one)["IPS"] == pytest.approx(ips[0])


def _two_step(reps: int, n: int, rng):
    """Two steps, 2 actions; step 2 converts with a probability set by step 1's action (a state the target changes)."""
    pb, pe = np.array([0.7, 0.3]), np.array([0.2, 0.8])
    p1 = np.array([0.1, 0.2])  # conversion at step 1 by action
    p2 = np.array([[0.1, 0.3], [0.2, 0.6]])  # conversion at step 2 by (action 1, action 2), if not yet converted
    truth = sum(pe[i] * (p1[i] + (1 - p1[i]) * sum(pe[j] * p2[i, j] for j in range(2))) for i in range(2))
    a1 = (rng.random((reps, n)) > pb[0]).astype(int)
    a2 = (rng.random((reps, n)) > pb[0]).astype(int)
    c1 = rng.random((reps, n)) < p1[a1]
    c2 = ~c1 & (rng.random((reps, n)) < p2[a1, a2])
    w = np.stack([pe[a1] / pb[a1], pe[a2] / pb[a2]], axis=-1)
    c = np.stack([c1, c2], axis=-1).astype(float)
    return truth, w, c, (a1, a2, c1)


def test_per_decision_ips_and_dr_are_unbiased_over_two_steps() -> None:
    rng = np.random.default_rng(2)
    reps, n = 3000, 100
    truth, w, c, (a1, a2, c1) = _two_step(reps, n, rng)
    rho = np.cumprod(w, axis=-1)
    ips = (rho * c).sum(axis=-1).mean(axis=1)
    # a deliberately wrong immediate-reward model: DR stays unbiased
    q = np.full((reps, n, 2), 0.25)
    v = np.full((reps, n, 2), 0.25)
    rho_prev = np.concatenate([np.ones((reps, n, 1)), rho[..., :1]], axis=-1)
    dr = (rho * (c - q) + rho_prev * v).sum(axis=-1).mean(axis=1)
    for name, vals in (("IPS", ips), ("DR", dr)):
        se = vals.std(ddof=1) / np.sqrt(reps)
        assert abs(vals.mean() - truth) < 4 * se, (name, vals.mean(), truth, se)  # 4 standard errors
    # weighting each step by its own ratio alone (not the running product) is biased here: the test can fail
    naive = (w * c).sum(axis=-1).mean(axis=1)
    assert abs(naive.mean() - truth) > 10 * naive.std(ddof=1) / np.sqrt(reps)
    # the library code gives the per-replication values above
    p = Padded(mask=np.ones((n, 2), bool), reward=c[0], weight=w[0], q_logged=q[0], v_target=v[0])
    est = point_estimates(p)
    assert est["IPS"] == pytest.approx(ips[0]) and est["DR"] == pytest.approx(dr[0])
    boot = estimate(p, np.random.default_rng(0), num_resamples=200)
    assert boot["IPS"].low <= est["IPS"] <= boot["IPS"].high and boot["IPS"].n == n


def test_purchase_model_is_cross_fitted_and_ranks_by_the_signal() -> None:
    rng = np.random.default_rng(3)
    s, m, ctx, f = 6000, 4, 3, 2
    obs = rng.normal(size=(s, ctx + m * f)).astype(np.float32)
    actions = rng.integers(0, m, size=s)
    feat = obs[:, ctx:].reshape(s, m, f)[np.arange(s), actions, 0]
    purchased = rng.random(s) < 1 / (1 + np.exp(-(2.0 * feat - 3.0)))
    episode = np.arange(s) // 3
    q = fit_purchase_model(obs, actions, purchased, episode, ctx, m)
    assert q.shape == (s, m) and ((q > 0) & (q < 1)).all()
    cand = obs[:, ctx:].reshape(s, m, f)[..., 0]
    # rows rank their candidates by the feature that drives purchases (near-ties may flip on the noise features' small weights)
    assert (np.argmax(q, axis=1) == np.argmax(cand, axis=1)).mean() > 0.95
    const = fit_purchase_model(obs, actions, np.zeros(s, bool), episode, ctx, m)
    assert (const == 0).all()
    with pytest.raises(ValueError, match="do not split into context_dim=4"):
        fit_purchase_model(obs, actions, purchased, episode, 4, m)


@pytest.mark.slow
def test_estimators_recover_the_on_policy_truth_at_a_short_horizon() -> None:
    # two-step sessions in the reference world: 20k logged sessions against 20k on-policy sessions
    from agents.evaluation import evaluate, make_eval_env
    from agents.offline_data import collect
    from agents.propensity import SoftmaxPolicy, UniformPolicy
    from ecomsim.registration import env_kwargs

    opts = env_kwargs("ecomsim/Recommend-v0", user_model="reference", max_steps=2)
    targets = {"uniform": UniformPolicy, "soft": lambda: SoftmaxPolicy("greedy", 0.25, 0.05)}
    logs = collect(SoftmaxPolicy("greedy", 0.5, 0.1), opts, 20_000, seed=11, targets={k: f() for k, f in targets.items()})
    model = fit_purchase_model(logs.obs, logs.actions, logs.infos["purchases"] > 0, logs.episode_of_step,
                               logs.meta["context_dim"], 20)
    for name, make in targets.items():
        truth = evaluate(make(), make_eval_env(opts, 256), 20_000, seed=99).metrics["conversion_rate"]
        est = estimate(padded_inputs(logs, logs.target_probs[name], model), np.random.default_rng(0), 300)
        for e in est.values():
            # tolerance: the estimate's and the truth's 95% intervals overlap
            assert e.low <= truth.high and truth.low <= e.high, (name, e, truth)
