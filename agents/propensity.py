"""Policies that state their action distribution: the logging policy of offline data and OPE targets.

Off-policy evaluation and offline RL need more than an action: the probability the
policy gave it. A :class:`DistributionPolicy` is an :class:`agents.baselines.Policy`
with ``probs(obs) -> (num_envs, num_candidates)``, the probability of showing each
candidate now, and ``act`` draws from exactly that distribution with the policy's
generator (so a logged propensity is the probability of the logged action, not an
approximation of it). ``ecomsim/Recommend-v0`` only (one item per step).

* :class:`SoftmaxPolicy`: ``(1 - epsilon) * softmax(score / temperature) + epsilon / M``
  over one of the baselines' scores (``popularity``: log catalog popularity;
  ``click_greedy``: log P(click); ``greedy``: log P(purchase), both under the env's
  shopper model, the quantities :mod:`agents.baselines` ranks by); ``epsilon > 0``
  keeps every candidate possible, which importance weights need.
* :class:`OneHotPolicy`: a deterministic baseline (or any ``Policy``) as the point
  mass on the action it takes.
* :class:`UniformPolicy`: ``1 / M`` everywhere.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Callable

import numpy as np

from agents.baselines import BASELINES, Policy

LOG_FLOOR = 1e-12  # P(click) / P(purchase) of 0 must not become log(0) = -inf in a softmax


def _log_popularity(core) -> np.ndarray:
    return np.log(core.catalog.popularity[core.candidates])


def _log_click(core) -> np.ndarray:
    return np.log(core.candidate_reaction().click + LOG_FLOOR)


def _log_purchase(core) -> np.ndarray:
    return np.log(core.candidate_reaction().purchase_total + LOG_FLOOR)


SCORES: dict[str, Callable] = {
    "popularity": _log_popularity,
    "click_greedy": _log_click,
    "greedy": _log_purchase,
}
"""Log scores ``(num_envs, num_candidates)`` a core's candidates get, keyed like the baselines that argmax them."""


def softmax_rows(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(N, M)`` scores (shifted by the row max: no overflow)."""
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def sample_rows(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw of one index per row: ``probs`` ``(N, M)``, ``u`` ``(N,)`` uniforms in [0, 1).

    Rounding can leave a row's total a hair below ``u``; the draw then falls on the
    row's last candidate of positive probability, never on one of probability 0.
    """
    cdf = np.cumsum(probs, axis=1)
    pick = (cdf <= u[:, None]).sum(axis=1)
    m = probs.shape[1]
    pick = np.minimum(pick, m - 1)
    rows = np.arange(probs.shape[0])
    bad = probs[rows, pick] <= 0
    if bad.any():
        last = m - 1 - np.argmax(probs[bad][:, ::-1] > 0, axis=1)
        pick[bad] = last
    return pick


class DistributionPolicy(Policy):
    """A policy with an explicit action distribution (``Recommend-v0``); ``act`` samples it."""

    deterministic = False

    def reset(self, core, rng: np.random.Generator) -> None:
        if core.slate_size != 1:
            raise ValueError(f"{type(self).__name__} needs one item per step (Recommend-v0), got slate_size={core.slate_size}")
        super().reset(core, rng)

    @abstractmethod
    def probs(self, obs: np.ndarray) -> np.ndarray:
        """``(num_envs, num_candidates)`` probability of each candidate now; rows sum to 1."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.act_with_probs(obs)[0]

    def act_with_probs(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(actions (num_envs,), probs (num_envs, num_candidates))``: one draw from ``probs``.

        A deterministic policy takes its argmax and draws nothing from the generator.
        """
        p = self.probs(obs)
        if self.deterministic:
            return np.argmax(p, axis=1), p
        return sample_rows(p, self.rng.random(p.shape[0])), p


class SoftmaxPolicy(DistributionPolicy):
    """``(1 - epsilon) * softmax(score / temperature) + epsilon / M`` over a baseline's log scores.

    Args:
        scores: a key of :data:`SCORES` (``popularity``, ``click_greedy``, ``greedy``).
        temperature: softmax temperature on the log scores (> 0; smaller is closer to the argmax).
        epsilon: share of uniform exploration, in [0, 1]; 0 allows near-zero propensities.
    """

    def __init__(self, scores: str = "greedy", temperature: float = 1.0, epsilon: float = 0.1) -> None:
        if scores not in SCORES:
            from ecomsim.errors import suggest

            raise ValueError(f"scores must be one of {list(SCORES)}, got {scores!r}.{suggest(str(scores), list(SCORES))}")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature <= 1e3:
            raise ValueError(f"temperature must be a number in (0, 1000], got {temperature!r}")
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0 <= epsilon <= 1:
            raise ValueError(f"epsilon must be a number in [0, 1], got {epsilon!r}")
        self.scores, self.temperature, self.epsilon = scores, float(temperature), float(epsilon)
        self.name = f"softmax_{scores}(T={self.temperature:g},eps={self.epsilon:g})"

    def probs(self, obs: np.ndarray) -> np.ndarray:
        s = SCORES[self.scores](self.core)
        m = s.shape[1]
        return (1.0 - self.epsilon) * softmax_rows(s / self.temperature) + self.epsilon / m

    def describe(self) -> dict:
        """JSON-friendly parameters (for dataset metadata and cards)."""
        return {"kind": "softmax", "scores": self.scores, "temperature": self.temperature, "epsilon": self.epsilon,
                "formula": "(1 - epsilon) * softmax(score / temperature) + epsilon / num_candidates"}


class OneHotPolicy(DistributionPolicy):
    """The point mass on the action of a deterministic policy (a baseline name or a ``Policy``)."""

    deterministic = True

    def __init__(self, inner: str | Policy) -> None:
        if isinstance(inner, str):
            if inner not in BASELINES or inner == "random":
                valid = [k for k in BASELINES if k != "random"]
                raise ValueError(f"inner must be a deterministic baseline {valid} or a Policy, got {inner!r}")
            inner = BASELINES[inner]()
        self.inner = inner
        self.name = inner.name

    def reset(self, core, rng: np.random.Generator) -> None:
        super().reset(core, rng)
        self.inner.reset(core, rng)

    def probs(self, obs: np.ndarray) -> np.ndarray:
        a = np.asarray(self.inner.act(obs))
        p = np.zeros((a.shape[0], self.core.num_candidates))
        p[np.arange(a.shape[0]), a] = 1.0
        return p


class UniformPolicy(DistributionPolicy):
    """Every candidate with probability ``1 / num_candidates``."""

    name = "uniform"

    def probs(self, obs: np.ndarray) -> np.ndarray:
        m = self.core.num_candidates
        return np.full((self.core.num_envs, m), 1.0 / m)
