r"""What the lifecycle layer hands a visit's session, and what it gets back.

The lifecycle layer owns the calendar (when a customer comes back, on which
channel, with which offer); a :class:`VisitSimulator` owns the visit: one shopping
session per visiting customer, batched. Two implementations:
:class:`ecomsim.lifecycle.sessions.SessionVisits` runs real sessions of the batched
core; :class:`ecomsim.lifecycle.emulator.VisitEmulator` is a fast emulator fitted to
it for calibration loops.

A returning customer differs from an anonymous shopper only through the
:class:`VisitContext`: her portrait (segment, interest, budget, price sensitivity,
patience) is her own instead of a fresh draw, her purchase intent is shifted by the
lifecycle's ``intent_offset`` (need and loyalty), a coupon lowers the price she
pays, and the cart she left last time is still there. A context with
``intent_offset = 0``, no coupon and an empty cart is an ordinary session.

**Coupon.** A coupon of ``discount`` ``d`` takes ``d`` off every price at checkout.
In the reference world's cart and purchase equations price enters only through
``price / budget``, so paying ``(1 - d) price`` is exactly a budget of
``budget / (1 - d)``; clicks (the premium look of the shown price) are unchanged.
The order's revenue is what the customer pays, ``(1 - d)`` times list price.

**Carried cart** (``cart``, up to ``CART_SLOTS`` items left in the cart on earlier
visits): at the start of the visit the customer decides on each carried item with
the reference world's purchase-given-cart equation at her visit intent ``w``::

    p_recover = sigmoid(d0 + d_q (q_i - 0.5) + 0.5 w - s d_over max(0, (1 - d) price_i / budget - 1))

A recovered item is bought (its category counts as bought); the others stay carried.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol, runtime_checkable

import numpy as np

from ecomsim.catalog import Catalog
from ecomsim.shoppers.population import CHANNEL_INTENT, SEGMENT_INTENT
from ecomsim.shoppers.reference import ReferenceParams
from ecomsim.sim.streams import SessionStreams

CART_SLOTS = 4  # carried cart items per customer (oldest dropped first)
RELEVANT_AFFINITY = ReferenceParams().a_min  # an item is relevant when <interest, embedding> >= this
DISAPPOINTING_QUALITY = 0.2  # a click on an item below this quality costs patience (2 q - 0.4 < 0)


@dataclass
class VisitContext:
    """Per-customer context of ``n`` visits (arrays batch-first).

    Attributes:
        segment: ``(n,)`` int64 index into ``ecomsim.shoppers.population.SEGMENTS``.
        channel: ``(n,)`` int64 0 app, 1 web, 2 social.
        interest: ``(n, d)`` float64 unit-norm interests over the item embedding space.
        budget: ``(n,)`` float64 comfortable spend per item on this channel, currency units, > 0.
        price_sensitivity: ``(n,)`` float64 > 0.
        patience: ``(n,)`` float64 initial patience of the session, steps of tolerance.
        intent_offset: ``(n,)`` float64 added to the purchase intent (logit) of an anonymous
            shopper of the same segment and channel.
        discount: ``(n,)`` float64 coupon share off this visit's order, in [0, 1).
        cart: ``(n, CART_SLOTS)`` int64 carried cart item ids, -1 for empty slots.
    """

    segment: np.ndarray
    channel: np.ndarray
    interest: np.ndarray
    budget: np.ndarray
    price_sensitivity: np.ndarray
    patience: np.ndarray
    intent_offset: np.ndarray
    discount: np.ndarray
    cart: np.ndarray

    def __len__(self) -> int:
        return len(self.segment)

    def intent(self) -> np.ndarray:
        """``(n,)`` the session's starting intent: segment and channel offsets plus ``intent_offset``."""
        return SEGMENT_INTENT[self.segment] + CHANNEL_INTENT[self.channel] + self.intent_offset

    def effective_budget(self) -> np.ndarray:
        """``(n,)`` the budget that makes list prices behave like discounted ones (module docstring)."""
        return self.budget / (1.0 - self.discount)

    def take(self, idx: np.ndarray) -> "VisitContext":
        return VisitContext(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field if a shape or value is off."""
        n = len(self.segment)
        for f in fields(self):
            arr = getattr(self, f.name)
            if arr.shape[:1] != (n,):
                raise ValueError(f"VisitContext.{f.name} must have {n} rows, got shape {arr.shape}")
        for name in ("budget", "price_sensitivity", "patience"):
            arr = getattr(self, name)
            if not np.all(np.isfinite(arr) & (arr > 0)):
                raise ValueError(f"VisitContext.{name} must be finite and > 0, got min {np.nanmin(arr)!r}")
        if not np.all((self.discount >= 0) & (self.discount < 1)):
            bad = self.discount[(self.discount < 0) | (self.discount >= 1)]
            raise ValueError(f"VisitContext.discount must be in [0, 1), got {bad[:3].tolist()}")
        if self.cart.shape != (n, CART_SLOTS):
            raise ValueError(f"VisitContext.cart must have shape ({n}, {CART_SLOTS}), got {self.cart.shape}")


@dataclass
class VisitOutcome:
    """Summary of ``n`` visits (arrays batch-first).

    Attributes:
        purchased: ``(n,)`` bool anything bought (carried cart included).
        revenue: ``(n,)`` float64 what the customer paid, currency units (coupon deducted).
        discount_cost: ``(n,)`` float64 what the coupon took off list price, currency units.
        items_bought: ``(n,)`` int64 items bought.
        categories_bought: ``(n, C)`` bool categories bought.
        recovered: ``(n,)`` int64 carried cart items bought.
        clicks: ``(n,)`` int64 clicks in the session.
        relevant_shown: ``(n,)`` int64 shown items with affinity >= ``RELEVANT_AFFINITY``.
        impressions: ``(n,)`` int64 items shown.
        disappointments: ``(n,)`` int64 clicks on items of quality < ``DISAPPOINTING_QUALITY``.
        session_length: ``(n,)`` int64 steps.
        cart: ``(n, CART_SLOTS)`` int64 the cart after the visit: carried items not recovered and
            items carted but not bought in this session, newest last, -1 for empty slots.
    """

    purchased: np.ndarray
    revenue: np.ndarray
    discount_cost: np.ndarray
    items_bought: np.ndarray
    categories_bought: np.ndarray
    recovered: np.ndarray
    clicks: np.ndarray
    relevant_shown: np.ndarray
    impressions: np.ndarray
    disappointments: np.ndarray
    session_length: np.ndarray
    cart: np.ndarray


@runtime_checkable
class VisitSimulator(Protocol):
    """Simulates one shopping session per visiting customer, batched.

    Attributes:
        catalog: the items on offer (categories, prices, embeddings).
    """

    catalog: Catalog

    def visit(self, context: VisitContext, keys: np.ndarray) -> VisitOutcome:
        """Outcomes of ``len(context)`` visits.

        ``keys`` ``(n,)`` uint64: visit ``i`` draws only from the random stream keyed ``keys[i]``
        (``ecomsim.sim.streams``), so a visit's outcome depends on its own context and key only.
        """
        ...


def visit_streams(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split each visit key into the carried cart's checkout uniforms and the session's stream key.

    Returns ``(n, CART_SLOTS)`` uniforms (drawn first from stream ``keys[i]``) and ``(n,)`` session keys
    (the hash of that stream after them, ``SessionStreams.next_keys``).
    """
    keys = np.ascontiguousarray(keys, dtype=np.uint64).reshape(-1)
    streams = SessionStreams(len(keys))
    rows = np.arange(len(keys))
    streams.set_keys(rows, keys)
    u = streams.uniform(CART_SLOTS, rows)
    return u, streams.next_keys(rows)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def recover_cart(context: VisitContext, catalog: Catalog, u: np.ndarray,
                 params: ReferenceParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Checkout decisions on the carried carts (module docstring), from uniforms ``u`` ``(n, CART_SLOTS)``.

    Returns:
        bought ``(n, CART_SLOTS)`` bool (carried items bought now) and the cart left ``(n, CART_SLOTS)``.
    """
    p = params or ReferenceParams()
    cart = context.cart
    has = cart >= 0
    if not has.any():
        return np.zeros(cart.shape, dtype=bool), cart.copy()
    item = np.where(has, cart, 0)
    price, quality = catalog.price[item], catalog.quality[item]
    over = np.maximum(0.0, price / context.effective_budget()[:, None] - 1.0)
    logit = (p.d0 + p.d_q * (quality - 0.5) + 0.5 * context.intent()[:, None]
             - context.price_sensitivity[:, None] * p.d_over * over)
    bought = has & (u < _sigmoid(logit))
    return bought, np.where(bought, -1, cart)


def push_cart(cart: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Append items ``new`` ``(n, j)`` (-1 = none) to carts ``(n, CART_SLOTS)``; the oldest drop out when full.

    Returns a new ``(n, CART_SLOTS)`` array, items oldest first, an item present twice kept once (at its
    newest place), empty slots (-1) last.
    """
    both = np.concatenate([cart, new], axis=1)
    width = both.shape[1]
    later = np.triu(np.ones((width, width), dtype=bool), k=1)  # later[a, b]: position b comes after a
    dup = ((both[:, :, None] == both[:, None, :]) & later[None]).any(axis=2)
    keep = (both >= 0) & ~dup
    from_right = np.cumsum(keep[:, ::-1], axis=1)[:, ::-1]  # kept entries at or after each position
    keep &= from_right <= CART_SLOTS
    slot = np.cumsum(keep, axis=1) - 1
    out = np.full((both.shape[0], CART_SLOTS), -1, dtype=np.int64)
    rows, cols = np.nonzero(keep)
    out[rows, slot[rows, cols]] = both[rows, cols]
    return out


def checkout(catalog: Catalog, context: VisitContext, recovered: np.ndarray, session_items: np.ndarray,
             session_revenue: np.ndarray, session_bought: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Revenue and categories of the whole order: recovered cart items plus the session's purchases.

    Args:
        recovered: ``(n, CART_SLOTS)`` bool from :func:`recover_cart`.
        session_items: ``(n,)`` items bought in the session.
        session_revenue: ``(n,)`` list-price revenue of the session, currency units.
        session_bought: ``(n, C)`` bool categories bought in the session.

    Returns:
        ``(revenue paid, discount cost, items bought, categories bought)``.
    """
    cart = np.where(recovered, context.cart, 0)
    list_revenue = session_revenue + (catalog.price[cart] * recovered).sum(axis=1)
    cats = session_bought.copy()
    rows, slots = np.nonzero(recovered)
    cats[rows, catalog.category[context.cart[rows, slots]]] = True
    cost = context.discount * list_revenue
    return list_revenue - cost, cost, session_items + recovered.sum(axis=1), cats
