r"""Off-policy evaluation of a session's conversion from logged episodes: IPS, SNIPS and DR.

**Estimand.** The target policy's conversion rate, the project's score: the
probability that a session run *entirely* under the target ends with a purchase,
``V(pi) = E_{tau ~ pi}[sum_t c_t]`` with the per-step conversion reward
``c_t = 1`` at the step of the session's first purchase, else 0 (so ``sum_t c_t`` is
1 for a converting session, 0 otherwise). Its ground truth is the on-policy
``conversion_rate`` of ``agents.evaluation.evaluate`` in the simulator. This is a
per-trajectory value, not the one-step bandit value at the logged states (which the
simulator could only give on the logged state distribution, not by running the target).

**Weights** (per decision, exact logged propensities): ``w_t = pi_e(a_t | x_t) / pi_b(a_t | x_t)``,
``rho_t = w_0 w_1 ... w_t``, ``rho_{-1} = 1``. Over ``n`` logged sessions ``i`` of lengths ``T_i``:

* IPS (per-decision importance sampling):
  ``V_IPS = 1/n sum_i sum_{t < T_i} rho_{i,t} c_{i,t}``; unbiased.
* SNIPS (weighted per-decision IS): ``V_SNIPS = sum_t [sum_i rho_{i,t} c_{i,t}] / [sum_i rho_{i,t}]``,
  where an ended session keeps its last weight (``rho_{i,t} = rho_{i,T_i-1}`` for ``t >= T_i``: it
  sits in an absorbing state, reward 0) and a step where every weight is 0 adds 0. Biased,
  consistent, bounded by the largest per-step reward sum.
* DR (per-decision doubly robust, Jiang & Li 2016, Thomas & Brunskill 2016):
  ``V_DR = 1/n sum_i sum_t [rho_{i,t} (c_{i,t} - q(x_{i,t}, a_{i,t})) + rho_{i,t-1} v(x_{i,t})]`` with
  ``v(x) = sum_a pi_e(a | x) q(x, a)``. Unbiased for any ``q`` (the exact propensities do the work);
  a good ``q`` cuts the variance. Here ``q`` is the *immediate* conversion model, not a
  long-horizon Q-function, so only the current step's noise is controlled.

With one step per session the three are obp's ``InverseProbabilityWeighting``,
``SelfNormalizedInverseProbabilityWeighting`` and ``DoublyRobust`` (tested).

**Reward model** (:func:`fit_purchase_model`): logistic regression (scikit-learn, L2,
``C=1``, standardised inputs) of "this step had a purchase" on the context features
and the shown candidate's features, cross-fitted on two halves of the sessions (each
half scored by the model of the other, so ``q`` never saw the rewards it corrects);
``q(x, a) = P_hat(purchase | x, a) * [no purchase earlier in the session]`` (the bracket
is read off the logged history, not from the simulator).

**Intervals**: percentile bootstrap over sessions (the reward model held fixed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecomsim.metrics import Estimate

ESTIMATORS = ("IPS", "SNIPS", "DR")


@dataclass
class Padded:
    """Per-session step arrays padded to ``(E, H)`` (``H`` = longest session); ``mask`` marks real steps."""

    mask: np.ndarray
    reward: np.ndarray
    weight: np.ndarray
    q_logged: np.ndarray | None = None
    v_target: np.ndarray | None = None


def pad(starts: np.ndarray, values: np.ndarray, fill: float) -> np.ndarray:
    """``(S, ...)`` step values -> ``(E, H, ...)``, sessions ``starts[e]:starts[e+1]`` as rows, ``fill`` after the end."""
    lengths = np.diff(starts)
    e, h = len(lengths), int(lengths.max()) if len(lengths) else 0
    out = np.full((e, h) + values.shape[1:], fill, dtype=np.float64)
    t = np.arange(values.shape[0]) - np.repeat(starts[:-1], lengths)
    out[np.repeat(np.arange(e), lengths), t] = values
    return out


def conversion_rewards(starts: np.ndarray, purchases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(c, bought_before)``, both ``(S,)``: the conversion reward of every step and whether the
    session had a purchase before it. ``purchases`` ``(S,)`` counts purchases per step."""
    lengths = np.diff(starts)
    bought = (np.asarray(purchases) > 0).astype(np.int64)
    cum = np.cumsum(bought)
    before_session = np.repeat(np.concatenate([[0], cum[starts[1:-1] - 1]]) if len(lengths) else [], lengths)
    earlier = cum - bought - before_session  # purchases at earlier steps of the same session
    before = earlier > 0
    return (bought.astype(bool) & ~before).astype(np.float64), before


def cumulative(weight: np.ndarray) -> np.ndarray:
    """``rho`` ``(E, H)``: running products of per-step weights (padding carries weight 1: absorbed sessions keep theirs)."""
    return np.cumprod(weight, axis=1)


def _terms(p: Padded) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Per-session pieces each estimator is a function of: ``(numerator, denominator or None)``."""
    rho = cumulative(p.weight)
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {
        "IPS": ((rho * p.reward).sum(axis=1), None),
        "SNIPS": (rho * p.reward, rho),
    }
    if p.q_logged is not None and p.v_target is not None:
        rho_prev = np.concatenate([np.ones((rho.shape[0], 1)), rho[:, :-1]], axis=1)
        dr = (rho * (p.reward - p.q_logged) + rho_prev * p.v_target) * p.mask
        out["DR"] = (dr.sum(axis=1), None)
    return out


def _value(num: np.ndarray, den: np.ndarray | None, counts: np.ndarray | None = None) -> np.ndarray:
    """Estimator value(s): plain mean of per-session terms, or the per-step ratio sum of SNIPS.

    ``counts`` ``(B, E)`` resamples sessions (bootstrap); without it, one value from all sessions.
    """
    n = num.shape[0]
    if den is None:
        return (num.mean() if counts is None else counts @ num / n)
    top = num.sum(axis=0) if counts is None else counts @ num
    bottom = den.sum(axis=0) if counts is None else counts @ den
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1.0), 0.0)
    return ratio.sum(axis=-1)


def estimate(p: Padded, rng: np.random.Generator, num_resamples: int = 500) -> dict[str, Estimate]:
    """IPS, SNIPS and (when ``q_logged`` / ``v_target`` are set) DR with 95% percentile-bootstrap intervals."""
    n = p.reward.shape[0]
    idx = rng.integers(0, n, size=(num_resamples, n))
    counts = np.bincount((idx + n * np.arange(num_resamples)[:, None]).ravel(), minlength=num_resamples * n)
    counts = counts.reshape(num_resamples, n).astype(np.float64)
    out = {}
    for name, (num, den) in _terms(p).items():
        boot = _value(num, den, counts)
        lo, hi = np.quantile(boot, [0.025, 0.975])
        out[name] = Estimate(float(_value(num, den)), float(lo), float(hi), n)
    return out


def effective_sessions(p: Padded) -> float:
    """Kish effective sample size of the whole-session weights ``rho_{i,T_i-1}``: ``(sum rho)^2 / sum rho^2``.

    Near ``n`` when the target acts like the logging policy; a few sessions (or 0) when
    only rare logged sessions follow the target: then no interval can be trusted.
    """
    rho = cumulative(p.weight)[:, -1]
    sq = float((rho**2).sum())
    return float(rho.sum() ** 2 / sq) if sq > 0 else 0.0


def point_estimates(p: Padded) -> dict[str, float]:
    """The estimators' values without intervals."""
    return {name: float(_value(num, den)) for name, (num, den) in _terms(p).items()}


# ============================================================ reward model
def candidate_features(obs: np.ndarray, context_dim: int, num_candidates: int) -> tuple[np.ndarray, np.ndarray]:
    """Split observations ``(S, D)`` into context ``(S, C)`` and candidate blocks ``(S, M, F)``."""
    s, d = obs.shape
    f, rem = divmod(d - context_dim, num_candidates)
    if context_dim < 1 or f < 1 or rem:
        raise ValueError(f"observations of {d} features do not split into context_dim={context_dim} "
                         f"plus num_candidates={num_candidates} equal blocks")
    return obs[:, :context_dim], obs[:, context_dim:].reshape(s, num_candidates, f)


def fit_purchase_model(obs: np.ndarray, actions: np.ndarray, purchased: np.ndarray, episode: np.ndarray,
                       context_dim: int, num_candidates: int, folds: int = 2, seed: int = 0) -> np.ndarray:
    """Cross-fitted logistic P_hat(purchase | x_t, candidate j) for every logged step and candidate, ``(S, M)``.

    Args:
        obs: ``(S, D)`` logged observations; actions: ``(S,)`` shown candidates;
        purchased: ``(S,)`` bool, a purchase at that step; episode: ``(S,)`` session index (folds split sessions).
        folds: sessions are split into this many folds; each is predicted by the model fitted on the others.
            A training fold without both classes predicts its positive share (a constant).
    """
    from sklearn.linear_model import LogisticRegression

    ctx, cand = candidate_features(np.asarray(obs, dtype=np.float64), context_dim, num_candidates)
    rows = np.arange(len(actions))
    x = np.concatenate([ctx, cand[rows, actions]], axis=1)
    y = np.asarray(purchased, dtype=bool)
    sessions = np.unique(episode)
    fold_of = np.random.default_rng(seed).permutation(len(sessions)) % folds
    fold = fold_of[np.searchsorted(sessions, episode)]
    out = np.empty((len(actions), num_candidates))
    for k in range(folds):
        train, test = fold != k, fold == k
        if not test.any():
            continue
        if y[train].all() or not y[train].any():
            out[test] = float(y[train].mean()) if train.any() else 0.0
            continue
        mu, sd = x[train].mean(axis=0), x[train].std(axis=0) + 1e-8
        model = LogisticRegression(C=1.0, max_iter=2000).fit((x[train] - mu) / sd, y[train])
        beta = model.coef_[0] / sd  # fold the standardisation into the coefficients
        b0 = model.intercept_[0] - (mu * beta).sum()
        logit = ctx[test] @ beta[:context_dim] + b0
        logit = logit[:, None] + cand[test] @ beta[context_dim:]
        out[test] = 1.0 / (1.0 + np.exp(-logit))
    return out


def padded_inputs(logs, target_probs: np.ndarray, purchase_model: np.ndarray | None) -> Padded:
    """Estimator inputs for one target from :class:`agents.offline_data.LoggedEpisodes`.

    Args:
        logs: the logged episodes (``infos["purchases"]``, ``propensity``, ``actions``).
        target_probs: ``(S, M)`` the target's distribution at every logged state.
        purchase_model: ``(S, M)`` P(purchase | x, j) for DR (a fitted model, or the
            simulator's for the oracle reference row); ``None`` leaves DR out.
    """
    starts = logs.starts
    rows = np.arange(logs.num_steps)
    c, before = conversion_rewards(starts, logs.infos["purchases"])
    w = target_probs[rows, logs.actions] / logs.propensity
    p = Padded(mask=pad(starts, np.ones(logs.num_steps), 0.0) > 0, reward=pad(starts, c, 0.0), weight=pad(starts, w, 1.0))
    if purchase_model is not None:
        q_all = purchase_model * (~before)[:, None]
        p.q_logged = pad(starts, q_all[rows, logs.actions], 0.0)
        p.v_target = pad(starts, (target_probs * q_all).sum(axis=1), 0.0)
    return p
