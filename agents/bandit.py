"""A contextual bandit baseline that learns online: linear UCB over candidate features.

:class:`LinUCBPolicy` keeps one shared ridge regression from a candidate's feature
vector ``x`` (bias, the candidate block of the observation: category, price,
quality, popularity, embedding, seen, affinity with the shopper, price against
budget, category bought) to the per-impression reward, and shows the candidates
with the highest upper confidence bound ``x . theta + alpha * sqrt(x' A^-1 x)``
(Li et al., 2010, the shared-parameter variant). It learns from every impression
of every session in the batch, through :meth:`observe`.

It is a *myopic* learner: it maximises the immediate expected reward of each
impression, so it ignores patience, fatigue and satisfied needs, like ``greedy``
but without knowing the shopper model.
"""

from __future__ import annotations

import numpy as np

from agents.baselines import Policy, top_k
from ecomsim.sim.core import SimulationCore

TARGETS = ("purchase", "cart", "click")


class LinUCBPolicy(Policy):
    """Shared-parameter LinUCB over candidate features (see the module docstring).

    Args:
        alpha: exploration width of the confidence bound.
        ridge: prior precision (``A`` starts at ``ridge * I``).
        target: the outcome learned per impression: ``purchase`` (the score's own
            event, sparse), ``cart`` or ``click``.
    """

    name = "bandit"

    def __init__(self, alpha: float = 0.5, ridge: float = 1.0, target: str = "purchase") -> None:
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {alpha!r}")
        if not ridge > 0:
            raise ValueError(f"ridge must be > 0, got {ridge!r}")
        if target not in TARGETS:
            raise ValueError(f"target must be one of {list(TARGETS)}, got {target!r}")
        self.alpha, self.ridge, self.target = alpha, ridge, target
        self.A: np.ndarray | None = None
        self._chosen: np.ndarray | None = None

    def reset(self, core: SimulationCore, rng: np.random.Generator) -> None:
        super().reset(core, rng)
        self.context_dim = core.layout.context_dim
        self.item_dim = len(core.layout.candidate_names)
        d = self.item_dim + 1
        if self.A is None or self.A.shape != (d, d):  # keeps what it learned across runs on the same layout
            self.A = self.ridge * np.eye(d)
            self.b = np.zeros(d)
            self.num_updates = 0
        self._refresh()

    def _refresh(self) -> None:
        self.A_inv = np.linalg.inv(self.A)
        self.theta = self.A_inv @ self.b

    def features(self, obs: np.ndarray) -> np.ndarray:
        """``(N, M, d)`` feature vectors of every candidate."""
        n, m = obs.shape[0], self.core.num_candidates
        cand = obs[:, self.context_dim :].reshape(n, m, self.item_dim).astype(np.float64)
        return np.concatenate([np.ones((n, m, 1)), cand], axis=2)

    def act(self, obs: np.ndarray) -> np.ndarray:
        x = self.features(obs)
        mean = x @ self.theta
        width = np.sqrt(np.maximum(np.einsum("nmd,de,nme->nm", x, self.A_inv, x), 0.0))
        # a tiny random tie-break so untrained scores do not always pick candidate 0
        scores = mean + self.alpha * width + 1e-9 * self.rng.random(mean.shape)
        actions = top_k(scores, self.core.slate_size)
        slots = actions.reshape(len(obs), -1)
        self._chosen = np.take_along_axis(x, slots[:, :, None], axis=1)  # (N, k, d)
        return actions

    def observe(self, actions: np.ndarray, reward: np.ndarray, info: dict) -> None:
        if self._chosen is None:
            return
        shown = np.asarray(info["items"]) >= 0  # (N, k); False for empty slots and autoreset rows
        key = {"purchase": "purchased", "cart": "carted", "click": "clicked"}[self.target]
        y = np.asarray(info[key], dtype=np.float64)[shown]
        x = self._chosen[shown]
        self._chosen = None
        if len(y) == 0:
            return
        self.A += x.T @ x
        self.b += x.T @ y
        self.num_updates += len(y)
        self._refresh()
