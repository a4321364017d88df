"""Membership inference against the behaviour model: does it give away who was in its training logs?

The attack is the loss-threshold attack (Yeom et al. 2018): a model fits the sessions
it was trained on better than fresh ones, so an attacker who can score a session's
likelihood guesses "member" when the loss is low. Its power is the ROC AUC of
``-loss`` for telling training sessions from held-out sessions of the same
distribution: 0.5 means the loss carries no membership signal, 1.0 that it gives
every member away. Also reported: the attacker's advantage ``max(TPR - FPR)`` over
thresholds (an upper bound on what any one threshold achieves).

**Loss of a session**: the mean over its steps of the model's negative log-likelihood
of what was logged (click of every shown item, cart given click, purchase given cart,
leaving at the step's outcome level; the training objective's terms), under the
calibrated probabilities the simulator samples from.
"""

from __future__ import annotations

import numpy as np

from ecomsim.data.schema import StepData
from ecomsim.shoppers.network import BehaviorNet
from ecomsim.shoppers.training import predict_steps

EPS = 1e-7  # probabilities are clipped to [EPS, 1 - EPS] inside the logs


def _bce(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))


def step_losses(net: BehaviorNet, s: StepData) -> np.ndarray:
    """``(S,)`` negative log-likelihood of each logged step (nats)."""
    pr = predict_steps(net, s)
    click, cart, buy = (np.asarray(getattr(s, f), dtype=np.float64) for f in ("click", "cart", "purchase"))
    nll = _bce(click, pr["click"]).sum(axis=1)
    nll += (_bce(cart, pr["cart"]) * click).sum(axis=1)
    nll += (_bce(buy, pr["purchase"]) * cart).sum(axis=1)
    return nll + _bce(np.asarray(s.left, dtype=np.float64), pr["leave"])


def session_losses(net: BehaviorNet, steps: dict[int, StepData]) -> np.ndarray:
    """``(sessions,)`` mean step loss of every session in ``steps`` (all slate sizes pooled; order of session id)."""
    ids, losses = [], []
    for s in steps.values():
        if len(s):
            ids.append(s.session)
            losses.append(step_losses(net, s))
    if not ids:
        raise ValueError("steps holds no logged steps")
    sid, loss = np.concatenate(ids), np.concatenate(losses)
    uniq, inv = np.unique(sid, return_inverse=True)
    return np.bincount(inv, weights=loss) / np.bincount(inv)


def loss_threshold_attack(member_losses: np.ndarray, nonmember_losses: np.ndarray, bootstrap: int = 200,
                          seed: int = 0) -> dict[str, float]:
    """AUC (with a 95% bootstrap interval) and best-threshold advantage of guessing "member" for low loss.

    Args:
        member_losses: ``(m,)`` losses of training sessions.
        nonmember_losses: ``(h,)`` losses of held-out sessions.
        bootstrap: resamples of both groups for the interval (0: none).
        seed: seeds the resampling.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    a, b = np.asarray(member_losses, dtype=np.float64), np.asarray(nonmember_losses, dtype=np.float64)
    if len(a) < 2 or len(b) < 2 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(f"need at least 2 finite losses per group, got {len(a)} members and {len(b)} non-members")
    y = np.r_[np.ones(len(a)), np.zeros(len(b))]
    score = -np.r_[a, b]
    auc = float(roc_auc_score(y, score))
    fpr, tpr, _ = roc_curve(y, score)
    out = {"auc": auc, "advantage": float(np.max(tpr - fpr)), "members": int(len(a)), "nonmembers": int(len(b)),
           "mean_loss_members": float(a.mean()), "mean_loss_nonmembers": float(b.mean())}
    if bootstrap:
        rng = np.random.default_rng(seed)
        boots = [roc_auc_score(y, -np.r_[rng.choice(a, len(a)), rng.choice(b, len(b))]) for _ in range(bootstrap)]
        out["auc_ci95"] = [float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))]
    return out


def membership_inference(net: BehaviorNet, members: dict[int, StepData], nonmembers: dict[int, StepData],
                         max_sessions: int = 5000, seed: int = 0) -> dict[str, float]:
    """The loss-threshold attack on ``net``: training sessions ``members`` vs held-out ``nonmembers``.

    Both groups are cut to the same size (at most ``max_sessions`` each, drawn with ``seed``), so
    the AUC is not tilted by group sizes.
    """
    la, lb = session_losses(net, members), session_losses(net, nonmembers)
    n = min(len(la), len(lb), max_sessions)
    rng = np.random.default_rng(seed)
    return loss_threshold_attack(rng.choice(la, n, replace=False), rng.choice(lb, n, replace=False), seed=seed)
