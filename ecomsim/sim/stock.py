"""Stock as the shoppers meet it (inventory on): what an empty or nearly empty shelf does to a session.

With ``EnvConfig.inventory`` set, the core holds each item's units on hand in
``item_table.stock`` (the store's own array, ``ecomsim.store.shop``) and the constants
:data:`STOCK_PARAMS` in ``item_table.stock_params``. The sampling kernel
(``kernels._sample_row``) applies these rules session by session, **in row order**, while
it samples the step; a shopper model computes its probabilities as if every shelf were
full (the DNN never saw a stock-out in its logs), and the rules act on top:

* **Empty shelf.** An item with no unit on hand can be shown and clicked (its page
  says "out of stock") but neither added to cart nor bought: its P(cart | click) and so
  its purchase probability are zero. The step's uniforms are drawn as always (a fixed
  number per step, streams stay aligned); where the draws would have bought the item,
  the step records a **lost sale** (``stock_flags`` row ``lost``): demand the store
  could not serve, which its books count (``StoreState``).
* **The last unit.** A purchase takes one unit from ``stock`` at once, so when several
  sessions of one step want the last unit, the lowest row gets it and the later rows
  find the shelf empty: a deterministic order (the session rows of a vector env are
  its sub-envs, in index order).
* **Low stock** ("only 3 left"): an item with ``1 <= units <= low_stock_units`` is
  flagged low in the observation, and the scarcity cue lifts its purchase:
  ``P(purchase | cart) <- min(1, P(purchase | cart) * (1 + scarcity_lift))``.
* **Disappointment.** After a step with a click on an empty shelf and no purchase, the
  hazard of leaving is raised: ``h <- 1 - (1 - h) * (1 - oos_leave)`` (``h`` the shopper
  model's hazard for the step's outcome level). This holds for every shopper model; the
  reference world adds a lasting patience cost (``ReferenceParams.k_oos``); the DNN,
  which learned from logs without stock-outs, has only this documented factor.

Off (no inventory) none of this exists: the fields are sized 0 and the kernels take the
path they always took, bit for bit.

The numpy functions below are the same rules for code that works on probabilities
(forecasts, stock-aware recommendation, action masks);
``tests/store/test_shop.py::test_numpy_stock_rules_match_the_kernel`` holds them to the kernel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from ecomsim.shoppers.base import Reaction

#: ``item_table.stock_params``, in this order: units at or below which stock is low (float), the purchase
#: multiplier at low stock ``1 + scarcity_lift``, ``oos_leave``, and 1.0 when the observation carries each
#: candidate's ``unit_profit_share`` (``StoreConfig.observe_profit``; 0.0 otherwise)
STOCK_PARAMS = ("low_stock_units", "scarcity_multiplier", "oos_leave", "observe_profit")


class StockKeeper(Protocol):
    """What a core with inventory is handed (``SimulationCore(..., stock=...)``): the store's side of the step.

    Attributes:
        stock: ``(num_items,)`` int64 units on hand, written in place by the core's kernels and the keeper.
        unit_profit: ``(num_items,)`` float64, currency units one unit bought is worth (``reward="profit"``).
        params: ``(4,)`` float64, :data:`STOCK_PARAMS`.
    """

    stock: np.ndarray
    unit_profit: np.ndarray
    params: np.ndarray

    def restart(self, keys: np.ndarray) -> None:
        """A reset gave every session a stream key (a seeded or first reset): start the store anew."""

    def before_step(self) -> None:
        """Bring the store up to the step's time (deliveries, other shoppers' demand) before it is sampled."""

    def after_step(self, items: np.ndarray, purchased: np.ndarray, lost: np.ndarray, sessions: int) -> None:
        """Book a step: ``items`` ``(N, k)``, ``purchased`` / ``lost`` ``(N, k)`` bool, ``sessions`` stepped."""


def params_array(low_stock_units: int, scarcity_lift: float, oos_leave: float,
                 observe_profit: bool = False) -> np.ndarray:
    """``(4,)`` float64 :data:`STOCK_PARAMS` from the store's options."""
    return np.array([float(low_stock_units), 1.0 + float(scarcity_lift), float(oos_leave), float(bool(observe_profit))])


def stock_state(units: np.ndarray, low_stock_units: float) -> np.ndarray:
    """Int8 of the shape of ``units``: 0 out of stock, 1 low (``1..low_stock_units``), 2 in stock."""
    units = np.asarray(units)
    return np.where(units <= 0, 0, np.where(units <= low_stock_units, 1, 2)).astype(np.int8)


def stocked_reaction(reaction: "Reaction", items: np.ndarray, stock: np.ndarray, params: np.ndarray) -> "Reaction":
    """The probabilities the sampling kernel uses for ``items`` ``(n, k)`` at the current ``stock``.

    ``cart`` is 0 on an empty shelf (so ``purchase_total`` is 0 there) and ``purchase`` is
    lifted at low stock. The leave hazard's disappointment term depends on the sampled
    click and is not in here. Rows are taken as if sampled alone (no other row takes a unit first).
    """
    from ecomsim.shoppers.base import Reaction

    units = stock[items]
    low = (units > 0) & (units <= params[0])
    purchase = np.where(low, np.minimum(1.0, reaction.purchase * params[1]), reaction.purchase)
    cart = np.where(units > 0, reaction.cart, 0.0)
    return Reaction(click=reaction.click, cart=cart, purchase=purchase, leave=reaction.leave)


def demand_probability(reaction: "Reaction", items: np.ndarray, stock: np.ndarray, params: np.ndarray) -> np.ndarray:
    """``(n, k)`` P(a sale or a lost sale) of showing ``items`` at the current ``stock``: the demand they meet.

    ``P(click) P(cart | click) P(purchase | cart)`` with the low-stock lift; on an empty
    shelf the same draws make a lost sale (the kernel's ``lost``), so it is not zeroed.
    """
    units = stock[items]
    low = (units > 0) & (units <= params[0])
    purchase = np.where(low, np.minimum(1.0, reaction.purchase * params[1]), reaction.purchase)
    return reaction.click * reaction.cart * purchase


def candidate_mask(candidates: np.ndarray, stock: np.ndarray, slate_size: int = 1) -> np.ndarray:
    """Action masks for sb3-contrib's ``MaskablePPO``: ``(n, slate_size * M)`` bool, candidate in stock.

    ``candidates`` ``(n, M)`` item ids. One block of ``M`` per slot (a ``MultiDiscrete``
    mask is the slots' masks side by side). A session whose candidates are all out of
    stock gets an all-true mask: the step must show something, and a mask with no valid
    action has no distribution.
    """
    ok = stock[candidates] > 0
    ok[~ok.any(axis=1)] = True
    return np.tile(ok, (1, slate_size)) if slate_size > 1 else ok
