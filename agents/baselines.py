"""Baseline recommendation policies, all batched over a vector env's sessions.

A policy maps the observation batch (and, for model-aware baselines, the env's
core) to actions: ``(num_envs,)`` candidate indexes for ``Recommend-v0`` and
``(num_envs, slate_size)`` for ``Slate-v0`` (the top-k candidates by score).

* ``random``: uniform over candidates.
* ``popularity``: the candidates with the highest catalog popularity.
* ``click_greedy``: highest P(click) under the env's shopper model right now
  (the myopic click-chaser).
* ``greedy``: highest P(purchase) = P(click) P(cart|click) P(purchase|cart) under
  the shopper model right now: the myopic oracle.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ecomsim.sim.core import SimulationCore


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """``(N,)`` argmax when ``k == 1``, else ``(N, k)`` indexes of the k best, best first."""
    if k == 1:
        return np.argmax(scores, axis=1)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


class Policy(ABC):
    """A batched policy over a core's sessions."""

    name = "policy"

    def reset(self, core: SimulationCore, rng: np.random.Generator) -> None:
        """Called once before a run; ``rng`` is the only randomness the policy may use."""
        self.core = core
        self.rng = rng

    @abstractmethod
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions for the current candidates of every session."""

    def observe(self, actions: np.ndarray, reward: np.ndarray, info: dict) -> None:
        """Feedback after a step (online learners use it)."""

    def _pick(self, scores: np.ndarray) -> np.ndarray:
        return top_k(scores, self.core.slate_size)


class RandomPolicy(Policy):
    name = "random"

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self._pick(self.rng.random((self.core.num_envs, self.core.num_candidates)))


class PopularityPolicy(Policy):
    name = "popularity"

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self._pick(self.core.catalog.popularity[self.core.candidates])


class ClickGreedyPolicy(Policy):
    name = "click_greedy"

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self._pick(self.core.candidate_reaction().click)


class GreedyPolicy(Policy):
    name = "greedy"

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self._pick(self.core.candidate_reaction().purchase_total)


BASELINES: dict[str, type[Policy]] = {
    cls.name: cls for cls in (RandomPolicy, PopularityPolicy, ClickGreedyPolicy, GreedyPolicy)
}
