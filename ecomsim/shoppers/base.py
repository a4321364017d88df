"""The shopper-model interface: how simulated shoppers react to what they are shown.

Who owns what:

* **The core** (``ecomsim.sim.core``) owns the state, every block of the table in
  ``ecomsim.sim.state`` (session counts and history, portraits, random streams, item
  and retrieval tables), and the step: it shows the chosen items, samples the outcomes
  from the model's probabilities with each session's own stream, advances the session
  state and retrieves the next candidates.
* **A shopper model** is bound to a core's :class:`~ecomsim.sim.state.SimState`
  (:meth:`ShopperModel.bind`, again after every catalog swap). It may read every block;
  it writes only its own latent state (the reference world's patience, fatigue and
  drifting interest; the DNN's ``tracker`` block). It turns the state and the shown
  items into probabilities (:meth:`~ShopperModel.reaction`, pure, one vectorised call for
  all sessions) and advances its latent state after the outcomes (:meth:`~ShopperModel.update`).
* **A fused step** (optional, :data:`FusedStep`) is a model's whole-step shortcut: the
  core's step kernels around the model's own forward, in as few compiled calls as it
  can. The model owns it; the core calls it instead of its general path when the model
  has one. It writes the state only through the core's kernels (the same row functions
  as the general path, so the results are the same bit for bit), fills the step's
  ``outcome`` block, and returns the next observation.

Outcome levels for leaving: ``0`` nothing clicked this step, ``1`` a click but no
purchase, ``2`` a purchase. The model gives the probability of leaving after the
step for each level, so one call per step suffices and leaving still depends on
what happened.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Callable, Mapping, Optional

import numpy as np

if TYPE_CHECKING:
    from ecomsim.sim.state import BlockSpec, SimState

NUM_LEAVE_LEVELS = 3
EMPTY_EXTRAS: Mapping[str, np.ndarray] = MappingProxyType({})


@dataclass(frozen=True)
class Quantity:
    """One named per-session quantity a shopper model reports (:meth:`ShopperModel.describe`).

    Attributes:
        name: its key in ``describe``'s dict.
        label: what people read (``"P(stay | nothing clicked)"``).
        low, high: the span a picture's bar covers (values may leave it; the bar then stops at its end).
    """

    name: str
    label: str
    low: float
    high: float


#: the quantities every model reports, read from its reaction (see the module docstring)
REACTION_QUANTITIES = (
    Quantity("p_stay_if_no_click", "patience P(stay | no click)", 0.0, 1.0),
    Quantity("p_buy_if_click", "intent P(buy | click)", 0.0, 1.0),
)


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


#: ``fused_step(slots, skip, outcome) -> obs``: the whole core step for every session. ``slots``
#: ``(N, k)`` int64 candidate indexes; ``skip`` ``(N,)`` bool sessions left as they are (just
#: restarted by a NEXT_STEP autoreset: nothing shown, zero outcomes, no draws) and only observed;
#: ``outcome``: the step's ``outcome`` bundle (``ecomsim.sim.state.OUTCOME``: items, flags, counts,
#: money, ends; fresh uninitialised arrays) to fill. Returns the next observation ``(N, obs_dim)``
#: float32 of every session (a fresh array).
FusedStep = Callable[[np.ndarray, np.ndarray, tuple], np.ndarray]


class ShopperModel(ABC):
    """A batched model of shopper behaviour, bound to one core's state (see the module docstring)."""

    #: short name used in configs and reports
    name: str = "shopper"

    #: the model's fused step (see :data:`FusedStep`), or ``None``: the core's general path
    fused_step: Optional[FusedStep] = None

    #: blocks of ``ecomsim.sim.state`` the model allocates at :meth:`bind` (the memory estimate counts them)
    blocks: tuple["BlockSpec", ...] = ()

    def memory_bytes(self, embed_dim: int, num_candidates: int, slate_size: int) -> tuple[int, int, int]:
        """What the model allocates besides its :attr:`blocks`, in bytes, for the memory estimate made before an
        env is built (``ecomsim.sim.memory``): ``(held per session, a step's temporaries per session, held per
        item)``. The default guesses generously for a numpy model: 32 float64 ``(n, k)`` temporaries a step."""
        return 0, 8 * 32 * slate_size, 0

    #: what :meth:`describe` reports, in order
    quantities: tuple[Quantity, ...] = REACTION_QUANTITIES

    #: per-session ``(N,)`` figures of the last step the model reports besides the outcome (the core hands
    #: them out as ``StepOutcome.extras``, the envs put them in ``info``): an ensemble's ``disagreement``
    extras: Mapping[str, np.ndarray] = EMPTY_EXTRAS

    def bind(self, state: "SimState") -> None:
        """Attach to a core's state (allocate latent state for ``state.num_envs`` sessions); called again
        after the core swaps its catalog (every session is then reset)."""
        self.state = state

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
        rows: np.ndarray | None = None,
        unavailable: np.ndarray | None = None,
    ) -> None:
        """Advance latent state after the core sampled outcomes (all ``(n, k)``, for the sessions ``rows``;
        every session when None). The core leaves out the sessions a step skips. With inventory the core
        also passes ``unavailable`` ``(n, k)`` bool, the shown items that had no unit on hand
        (``ecomsim.sim.stock``), to a model whose ``update`` takes that keyword.

        Called before the core updates its own session counters.
        """

    def describe(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Named quantities of sessions ``rows`` (all when None): ``{q.name: (n,) float64}`` for ``q`` in
        :attr:`quantities`. Pure, like :meth:`reaction`. A model with latent state adds it to
        :meth:`reaction_summary`'s two."""
        return self.reaction_summary(rows)

    def reaction_summary(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """``p_stay_if_no_click`` and ``p_buy_if_click`` of sessions ``rows``, ``(n,)`` each: the model's
        ``1 - leave[none]`` and ``cart * purchase`` for every candidate on offer shown alone in the top slot,
        averaged over the candidates."""
        st = self.state
        rows = st.all_rows if rows is None else np.asarray(rows, dtype=np.int64)
        cand = st.session.candidates[rows]
        n, m = cand.shape
        r = self.reaction(cand.reshape(n * m, 1), np.zeros(1), np.repeat(rows, m))
        stay = 1.0 - r.leave[:, 0].reshape(n, m).mean(axis=1)
        buy = (r.cart * r.purchase)[:, 0].reshape(n, m).mean(axis=1)
        return {"p_stay_if_no_click": stay, "p_buy_if_click": buy}
