"""The shopper-model interface: how simulated shoppers react to what they are shown.

The batched core (``ecomsim.sim.core``) owns the observable session state (portraits,
counts, history) and samples outcomes; a :class:`ShopperModel` turns that state and
the shown items into probabilities, in one vectorised call for all sessions, and may
keep latent state of its own (the reference world's patience, fatigue and drifting
interests). Two implementations: :class:`ecomsim.shoppers.reference.ReferenceWorld` and the
learned DNN behaviour model.

Outcome levels for leaving: ``0`` nothing clicked this step, ``1`` a click but no
purchase, ``2`` a purchase. The model gives the probability of leaving after the
step for each level, so one call per step suffices and leaving still depends on
what happened.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ecomsim.sim.core import SimulationCore

NUM_LEAVE_LEVELS = 3


@dataclass
class Reaction:
    """Probabilities for ``N`` sessions shown ``k`` items each.

    Attributes:
        click: ``(N, k)`` P(click), position bias included.
        cart: ``(N, k)`` P(add to cart | click).
        purchase: ``(N, k)`` P(purchase | cart).
        leave: ``(N, 3)`` P(leave after this step | outcome level none / click / purchase).
    """

    click: np.ndarray
    cart: np.ndarray
    purchase: np.ndarray
    leave: np.ndarray

    @property
    def purchase_total(self) -> np.ndarray:
        """``(N, k)`` P(purchase) = P(click) P(cart | click) P(purchase | cart)."""
        return self.click * self.cart * self.purchase


class ShopperModel(ABC):
    """A batched model of shopper behaviour, bound to one core."""

    #: short name used in configs and reports
    name: str = "shopper"

    #: Optional whole-step shortcut: ``fused_step(slots, items, flags, counts, money, ends, skip)``
    #: does everything ``SimulationCore.step`` does (same results), writes the outcome
    #: blocks and returns the next observation ``(N, obs_dim)``. It leaves the sessions
    #: ``skip`` ((N,) bool) unstepped (nothing shown, zero outcomes, no draws) and only
    #: observes them: a vector env restarts its autoreset sessions first and skips them.
    fused_step = None

    def bind(self, core: "SimulationCore") -> None:
        """Attach to a core (allocate latent state for ``core.num_envs`` sessions)."""
        self.core = core

    def reset_sessions(self, idx: np.ndarray) -> None:
        """Initialise latent state of sessions ``idx`` after the core drew their portraits."""

    @abstractmethod
    def reaction(self, items: np.ndarray, positions: np.ndarray, rows: np.ndarray | None = None) -> Reaction:
        """Probabilities for showing ``items`` ``(n, k)`` at ``positions`` ``(k,)``.

        Pure: no state changes. ``rows`` selects the sessions (all when None).
        """

    def update(
        self,
        items: np.ndarray,
        shown: np.ndarray,
        clicked: np.ndarray,
        carted: np.ndarray,
        purchased: np.ndarray,
    ) -> None:
        """Advance latent state after the core sampled outcomes (all ``(N, k)``).

        Called before the core updates its own session counters.
        """
