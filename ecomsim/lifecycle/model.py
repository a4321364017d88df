"""Customers over time: the state of ``N`` customers in arrays and the visit step that advances them.

The equations are in ``ecomsim.lifecycle.params`` (module docstring, term for term);
this module holds the state (:class:`Customers`) and applies them
(:class:`Lifecycle`). A visit step takes the customers whose next visit is due,
drifts their state over the gap, builds each visit's
:class:`~ecomsim.lifecycle.visits.VisitContext`, hands it to a
:class:`~ecomsim.lifecycle.visits.VisitSimulator`, applies the outcome and draws
the next return (``ecomsim.lifecycle.returns``). Every draw comes from the
generator that keys the customers' streams (``ecomsim.lifecycle.entry``); same generator state, same result.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy import special

from ecomsim.catalog import Catalog
from ecomsim.config import CHANNELS
from ecomsim.lifecycle.entry import Entrants
from ecomsim.lifecycle.params import MESSAGE_KINDS, LifecycleParams
from ecomsim.lifecycle.returns import (
    MAX_MESSAGES,
    NEVER,
    RETURN_DRAWS,
    ReturnDraw,
    ReturnInputs,
    draw_return,
    return_probability,
)
from ecomsim.lifecycle.visits import CART_SLOTS, VisitContext, VisitOutcome, VisitSimulator
from ecomsim.shoppers.population import CHANNEL_BUDGET, CHANNEL_PATIENCE, CHANNEL_SHARE, ShopperPopulation
from ecomsim.sim.streams import SessionStreams


@dataclass
class Customers:
    """State of ``N`` customers (batch-first; days are absolute calendar days).

    Static: ``segment`` (N,) int64; ``interest`` (N, d) unit vectors (they drift); ``budget`` (N,) base
    budget, currency units (times ``CHANNEL_BUDGET`` on a channel); ``price_sensitivity`` (N,);
    ``patience`` (N,) base (times ``CHANNEL_PATIENCE``); ``channel_pref`` (N, 3) ``pi``;
    ``visit_rate`` (N,) ``lambda_n`` per day; ``churn_propensity`` (N,) ``H_n`` (mean 1).

    Dynamic: ``need`` (N, C) ``nu``; ``loyalty`` (N,) ``L`` after the last visit; ``experience`` (N,) ``e``
    of the last visit; ``annoyance`` (N,) ``A`` on day ``next_day`` (the gap's messages included);
    ``cart`` (N, CART_SLOTS) item ids (-1 empty) kept until ``cart_until`` (N,); ``coupon`` (N,) discount
    valid until ``coupon_until`` (N,); ``unsubscribed`` (N, 3) bool per message kind; ``alive`` (N,) bool;
    ``last_day`` (N,) last visit; ``next_day`` (N,) next visit (``NEVER`` if none within the horizon);
    ``churn_day`` (N,) (``NEVER`` unless churned); ``next_channel`` (N,) channel forced by an answered
    message, -1 if none. Totals: ``visits``, ``purchases`` (N,) int64, ``revenue`` (N,) currency units.

    Randomness: ``streams``, one counter-based stream per customer (``ecomsim.sim.streams``), keyed from
    the caller's generator when the customers enter. Each step draws a fixed count from each visiting
    customer's stream, so a customer's life depends on her own stream only (not on who else is simulated).
    """

    segment: np.ndarray
    interest: np.ndarray
    budget: np.ndarray
    price_sensitivity: np.ndarray
    patience: np.ndarray
    channel_pref: np.ndarray
    visit_rate: np.ndarray
    churn_propensity: np.ndarray
    need: np.ndarray
    loyalty: np.ndarray
    experience: np.ndarray
    annoyance: np.ndarray
    cart: np.ndarray
    cart_until: np.ndarray
    coupon: np.ndarray
    coupon_until: np.ndarray
    unsubscribed: np.ndarray
    alive: np.ndarray
    last_day: np.ndarray
    next_day: np.ndarray
    churn_day: np.ndarray
    next_channel: np.ndarray
    visits: np.ndarray
    purchases: np.ndarray
    revenue: np.ndarray
    streams: SessionStreams

    def __len__(self) -> int:
        return len(self.segment)

    def take(self, idx: np.ndarray) -> "Customers":
        """A copy of rows ``idx`` (their random streams continue where these are)."""
        idx = np.asarray(idx, dtype=np.int64)
        out = {f.name: getattr(self, f.name)[idx].copy() for f in fields(self) if f.name != "streams"}
        streams = SessionStreams(len(idx))
        for name in ("key", "base", "counter"):
            getattr(streams, name)[:] = getattr(self.streams, name)[idx]
        return Customers(**out, streams=streams)


@dataclass
class VisitStep:
    """What one visit step did, rows aligned with the ``rows`` it was given.

    Attributes:
        day: ``(n,)`` the visit day; ``channel``: ``(n,)`` its channel; ``discount``: ``(n,)`` the coupon
        applied to the session; ``outcome``: the session's :class:`VisitOutcome`; ``message_cost``:
        ``(n,)`` cost of the messages delivered before the next visit (currency units);
        ``messages_sent``: ``(n,)`` their number; ``next_day``: ``(n,)`` (``NEVER`` if none);
        ``churned``: ``(n,)`` bool churned before the next visit within the horizon.
    """

    day: np.ndarray
    channel: np.ndarray
    discount: np.ndarray
    outcome: VisitOutcome
    message_cost: np.ndarray
    messages_sent: np.ndarray
    next_day: np.ndarray
    churned: np.ndarray


@dataclass
class GapStep:
    """What :meth:`Lifecycle.gap` drew, rows aligned with its ``rows``: ``message_cost`` ``(n,)`` currency
    units and ``messages_sent`` ``(n,)`` of the messages delivered before the next visit, ``next_day`` ``(n,)``
    (``NEVER`` if none within the horizon), ``churned`` ``(n,)`` bool."""

    message_cost: np.ndarray
    messages_sent: np.ndarray
    next_day: np.ndarray
    churned: np.ndarray


class Lifecycle:
    """Applies the lifecycle equations to :class:`Customers` (see ``ecomsim.lifecycle.params``).

    Args:
        catalog: the catalog the sessions run on (category centroids anchor the preferences).
        params: the lifecycle parameters (default: the calibrated ones).
    """

    def __init__(self, catalog: Catalog, params: LifecycleParams | None = None) -> None:
        self.params = params or LifecycleParams()
        self.catalog = catalog
        self.population = ShopperPopulation(catalog)
        self.centroids = self.population.centroids  # (C, d) unit category directions
        self.num_categories = catalog.num_categories

    # -------------------------------------------------------------- pieces
    def preferences(self, interest: np.ndarray) -> np.ndarray:
        """``(n, C)`` ``phi = softmax(pref_sharpness * <u, centroid_c>)``."""
        z = self.params.pref_sharpness * interest @ self.centroids.T
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def intent_offset(self, c: Customers, rows: np.ndarray) -> np.ndarray:
        """``(n,)`` ``intent_base + intent_need (nubar - 1) + intent_loyalty L`` for rows ``rows``."""
        p = self.params
        nubar = (self.preferences(c.interest[rows]) * c.need[rows]).sum(axis=1)
        return p.intent_base + p.intent_need * (nubar - 1.0) + p.intent_loyalty * c.loyalty[rows]

    def _drift(self, c: Customers, rows: np.ndarray, gap: np.ndarray) -> None:
        """Interest, need and loyalty over ``gap`` ``(n,)`` days (annoyance was set by the return draw)."""
        p = self.params
        z = c.streams.normal(c.interest.shape[1], rows)
        u = c.interest[rows] + p.interest_drift * np.sqrt(gap)[:, None] * z
        c.interest[rows] = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
        c.need[rows] = 1.0 - (1.0 - c.need[rows]) * np.exp(-gap / p.need_regrowth_days)[:, None]
        c.loyalty[rows] *= np.exp(-gap / p.loyalty_memory_days)

    def _return_inputs(self, c: Customers, rows: np.ndarray, day: np.ndarray, until: np.ndarray,
                       message_day: np.ndarray, message_kind: np.ndarray) -> ReturnInputs:
        phi = self.preferences(c.interest[rows])
        live = c.alive[rows]  # a customer who left after this purchase never returns (messages still go out)
        return ReturnInputs(
            visit_rate=c.visit_rate[rows] * live, churn_hazard=self.params.churn_rate * c.churn_propensity[rows] * live,
            need_deficit=(phi * (1.0 - c.need[rows])).sum(axis=1), loyalty=c.loyalty[rows],
            annoyance=c.annoyance[rows], experience=c.experience[rows], coupon=c.coupon[rows],
            coupon_until=c.coupon_until[rows] - day,
            cart_until=np.where((c.cart[rows] >= 0).any(axis=1), c.cart_until[rows] - day, 0),
            message_day=message_day, message_kind=message_kind, unsubscribed=c.unsubscribed[rows], until=until - day)

    def return_probability(self, c: Customers, rows: np.ndarray, days: int = 30) -> np.ndarray:
        """``(n,)`` probability that customers ``rows`` visit within ``days`` days of their last visit, given
        their whole hidden state and no messages (``1 -`` it: the Bayes-optimal churn risk).

        Meant right after a visit step (the annoyance then is the one the return draw saw)."""
        rows = np.asarray(rows, dtype=np.int64)
        none = np.zeros((len(rows), 0), dtype=np.int64)
        day = c.last_day[rows]
        return return_probability(self.params, self._return_inputs(c, rows, day, day + days, none, none), days)

    def _draw_return(self, c: Customers, rows: np.ndarray, day: np.ndarray, until: np.ndarray,
                     message_day: np.ndarray, message_kind: np.ndarray) -> ReturnDraw:
        """The **Return time** draw for customers ``rows`` after their visit on ``day``; updates their state."""
        x = self._return_inputs(c, rows, day, until, message_day, message_kind)
        d = draw_return(self.params, x, c.streams.uniform(RETURN_DRAWS, rows))
        reached = d.visit != NEVER
        c.next_day[rows] = np.where(reached, day + d.visit, NEVER)
        churned = d.churn != NEVER
        c.churn_day[rows] = np.where(churned, day + d.churn, c.churn_day[rows])
        c.alive[rows] &= ~churned
        c.next_channel[rows] = d.channel
        c.unsubscribed[rows] = d.unsubscribed
        c.annoyance[rows] = d.annoyance_at_visit
        c.last_day[rows] = day
        return d

    # ---------------------------------------------------------------- entry
    def new_customers(self, entrants: Entrants, until: np.ndarray | int) -> Customers:
        """Customers entering at their trial purchase (``ecomsim.lifecycle.entry``); next visits drawn up to ``until``.

        ``entrants`` is not modified (a calibration reuses it); each customer's stream continues from a copy.
        """
        p = self.params
        first_day = entrants.first_day
        n = len(entrants)
        rows = np.arange(n)
        streams = entrants.streams_copy()
        trial = entrants.context
        u = streams.uniform(len(CHANNELS) + 3, rows)  # channel preferences, visit rate, churn propensity, leaving
        # Dirichlet(channel_concentration * mix), updated by the trial visit's channel
        alpha = p.channel_concentration * CHANNEL_SHARE[None, :] + np.eye(len(CHANNELS))[trial.channel]
        pref = special.gammaincinv(alpha, u[:, : len(CHANNELS)])
        g = special.gammaincinv(p.visit_shape, u[:, 3]) / p.visit_shape  # Gamma(shape, 1 / shape): mean 1
        h = special.gammaincinv(p.churn_shape, u[:, 4]) / p.churn_shape
        never = np.full(n, NEVER, dtype=np.int64)
        c = Customers(
            segment=trial.segment.copy(), interest=trial.interest.copy(),
            budget=trial.budget / CHANNEL_BUDGET[trial.channel], price_sensitivity=trial.price_sensitivity.copy(),
            patience=trial.patience / CHANNEL_PATIENCE[trial.channel],
            channel_pref=pref / pref.sum(axis=1, keepdims=True), visit_rate=p.visit_rate * g, churn_propensity=h,
            need=np.ones((n, self.num_categories)), loyalty=np.zeros(n), experience=np.zeros(n),
            annoyance=np.zeros(n), cart=np.full((n, CART_SLOTS), -1, dtype=np.int64), cart_until=first_day.copy(),
            coupon=np.zeros(n), coupon_until=first_day.copy(),
            unsubscribed=np.zeros((n, len(MESSAGE_KINDS)), dtype=bool), alive=np.ones(n, dtype=bool),
            last_day=first_day.copy(), next_day=never.copy(), churn_day=never.copy(),
            next_channel=np.full(n, -1, dtype=np.int64), visits=np.zeros(n, dtype=np.int64),
            purchases=np.zeros(n, dtype=np.int64), revenue=np.zeros(n), streams=streams)
        self._apply(c, rows, first_day, entrants.trial)  # the trial visit: needs met, loyalty, cart
        self._leave_after_purchase(c, rows, entrants.trial.purchased, u[:, 5], first_day)
        empty = np.zeros((n, 0), dtype=np.int64)
        self._draw_return(c, rows, first_day, np.broadcast_to(np.asarray(until, dtype=np.int64), (n,)), empty, empty)
        return c

    # ---------------------------------------------------------------- visit
    def visit(self, c: Customers, rows: np.ndarray, sim: VisitSimulator, until: np.ndarray | int,
              coupon: np.ndarray | None = None, message_day: np.ndarray | None = None,
              message_kind: np.ndarray | None = None) -> VisitStep:
        """Run the due visits of customers ``rows`` (on their ``next_day``) and draw their next return.

        Args:
            rows: ``(n,)`` customers whose ``next_day`` is a visit (alive, not ``NEVER``).
            sim: the visit simulator.
            until: last day simulated (scalar or ``(n,)``); returns after it are ``NEVER``.
            coupon: ``(n,)`` discount offered at the start of this visit (one of ``COUPONS``; 0 = none): it
                applies to this visit's order, or the next one within ``coupon_days``.
            message_day, message_kind: ``(n, M)`` messages planned until the next visit (days after
                this visit, 0 = none; kinds index ``MESSAGE_KINDS``).
        """
        p = self.params
        rows = np.asarray(rows, dtype=np.int64)
        n = len(rows)
        day = c.next_day[rows]
        if not (np.all(c.alive[rows]) and np.all(day != NEVER)):
            raise ValueError("rows must be live customers with a visit due (alive and next_day within the horizon)")
        _check_offers(n, coupon, message_day, message_kind)
        self._drift(c, rows, (day - c.last_day[rows]).astype(np.float64))
        if coupon is not None:
            new = np.asarray(coupon, dtype=np.float64) > 0
            c.coupon[rows] = np.where(new, coupon, c.coupon[rows])
            c.coupon_until[rows] = np.where(new, day + p.coupon_days, c.coupon_until[rows])
        valid = day <= c.coupon_until[rows]
        discount = np.where(valid, c.coupon[rows], 0.0)
        c.coupon[rows] = discount  # an expired coupon is gone
        kept = day <= c.cart_until[rows]
        c.cart[rows] = np.where(kept[:, None], c.cart[rows], -1)
        cdf = np.cumsum(c.channel_pref[rows], axis=1)
        u = c.streams.uniform(2, rows)  # channel, leaving after a purchase
        drawn = np.minimum((u[:, :1] >= cdf).sum(axis=1), len(CHANNELS) - 1)
        channel = np.where(c.next_channel[rows] >= 0, c.next_channel[rows], drawn)
        ctx = VisitContext(
            segment=c.segment[rows], channel=channel, interest=c.interest[rows].copy(),
            budget=c.budget[rows] * CHANNEL_BUDGET[channel], price_sensitivity=c.price_sensitivity[rows],
            patience=c.patience[rows] * CHANNEL_PATIENCE[channel], intent_offset=self.intent_offset(c, rows),
            discount=discount, cart=c.cart[rows].copy())
        out = sim.visit(ctx, c.streams.next_keys(rows))  # the visit's own stream, hashed from the customer's
        self._apply(c, rows, day, out)
        self._leave_after_purchase(c, rows, out.purchased, u[:, 1], day)
        if message_day is None:
            message_day = np.zeros((n, 0), dtype=np.int64)
            message_kind = np.zeros((n, 0), dtype=np.int64)
        d = self._draw_return(c, rows, day, np.broadcast_to(np.asarray(until, dtype=np.int64), (n,)),
                              np.asarray(message_day, dtype=np.int64), np.asarray(message_kind, dtype=np.int64))
        cost = (d.sent * np.asarray(p.message_cost)[np.asarray(message_kind, dtype=np.int64)]).sum(axis=1)
        return VisitStep(day=day, channel=channel, discount=discount, outcome=out, message_cost=cost,
                         messages_sent=d.sent.sum(axis=1), next_day=c.next_day[rows].copy(),
                         churned=~c.alive[rows])

    def gap(self, c: Customers, rows: np.ndarray, until: np.ndarray | int, coupon: np.ndarray | None = None,
            message_day: np.ndarray | None = None, message_kind: np.ndarray | None = None) -> GapStep:
        """Offer a coupon and plan messages after customers' last visit, then draw their next return.

        For a caller that decides after seeing a visit (``ecomsim/Retention-v0``): the visit runs with
        :meth:`visit` and ``until`` equal to its day (an empty return scan: nothing drawn into the state),
        then this method draws the gap. The coupon is sent on the last visit's day: valid ``coupon_days``
        from it, it raises the return hazard and discounts the next order (a coupon of 0 keeps a pending one).

        Args:
            rows: ``(n,)`` customers (a churned one's messages still go out and cost, with no effect).
            until: last day simulated (scalar or ``(n,)``); returns after it are ``NEVER``.
            coupon, message_day, message_kind: as in :meth:`visit`.
        """
        p = self.params
        rows = np.asarray(rows, dtype=np.int64)
        n = len(rows)
        _check_offers(n, coupon, message_day, message_kind)
        day = c.last_day[rows]
        if coupon is not None:
            new = np.asarray(coupon, dtype=np.float64) > 0
            c.coupon[rows] = np.where(new, coupon, c.coupon[rows])
            c.coupon_until[rows] = np.where(new, day + p.coupon_days, c.coupon_until[rows])
        if message_day is None:
            message_day = np.zeros((n, 0), dtype=np.int64)
            message_kind = np.zeros((n, 0), dtype=np.int64)
        kind = np.asarray(message_kind, dtype=np.int64)
        d = self._draw_return(c, rows, day, np.broadcast_to(np.asarray(until, dtype=np.int64), (n,)),
                              np.asarray(message_day, dtype=np.int64), kind)
        cost = (d.sent * np.asarray(p.message_cost)[kind]).sum(axis=1)
        return GapStep(message_cost=cost, messages_sent=d.sent.sum(axis=1), next_day=c.next_day[rows].copy(),
                       churned=~c.alive[rows])

    def _leave_after_purchase(self, c: Customers, rows: np.ndarray, purchased: np.ndarray, u: np.ndarray,
                              day: np.ndarray) -> None:
        """A purchase may be the last: churn with ``1 - exp(-churn_after_purchase * H_n * exp(...))``."""
        p = self.params
        rate = p.churn_after_purchase * c.churn_propensity[rows] * np.exp(
            -p.churn_loyalty * c.loyalty[rows] + p.churn_annoyance * c.annoyance[rows])
        leaves = purchased & (u < -np.expm1(-rate))
        c.alive[rows] &= ~leaves
        c.churn_day[rows] = np.where(leaves, day, c.churn_day[rows])

    def _apply(self, c: Customers, rows: np.ndarray, day: np.ndarray, out: VisitOutcome) -> None:
        """Need, loyalty, coupon, cart and totals after the visit (the **After the visit** paragraph)."""
        p = self.params
        need = c.need[rows]
        need[out.categories_bought] = 0.0
        c.need[rows] = need
        share = out.relevant_shown / np.maximum(out.impressions, 1)
        e = (p.loyalty_buy * out.purchased + p.loyalty_relevance * (share - p.relevance_ref)
             - p.loyalty_disappointment * out.disappointments)
        c.experience[rows] = e
        L, step = c.loyalty[rows], np.clip(e, -1.0, 1.0)  # a share of the way to +-1
        c.loyalty[rows] = L + (1.0 - L) * np.maximum(step, 0.0) - (1.0 + L) * np.maximum(-step, 0.0)
        c.coupon[rows] = np.where(out.purchased, 0.0, c.coupon[rows])
        changed = (out.cart != c.cart[rows]).any(axis=1)
        c.cart[rows] = out.cart
        c.cart_until[rows] = np.where(changed, day + p.cart_days, c.cart_until[rows])
        c.visits[rows] += 1
        c.purchases[rows] += out.purchased
        c.revenue[rows] += out.revenue


def _check_offers(n: int, coupon, message_day, message_kind) -> None:
    """Raise ``ValueError`` naming the argument when an offer or message plan is malformed."""
    if coupon is not None:
        arr = np.asarray(coupon, dtype=np.float64)
        if arr.shape != (n,) or not np.all((arr >= 0) & (arr < 1)):
            raise ValueError(f"coupon must be {n} discounts in [0, 1), got shape {arr.shape} with values "
                             f"{np.unique(arr)[:5].tolist()}")
    if (message_day is None) != (message_kind is None):
        raise ValueError("message_day and message_kind go together: give both or neither")
    if message_day is not None:
        days, kinds = np.asarray(message_day), np.asarray(message_kind)
        if days.ndim != 2 or days.shape[0] != n or kinds.shape != days.shape:
            raise ValueError(f"message_day and message_kind must both have shape ({n}, M), got {days.shape} and {kinds.shape}")
        if not (np.issubdtype(days.dtype, np.integer) and np.issubdtype(kinds.dtype, np.integer)):
            raise ValueError(f"message_day and message_kind must be integers, got {days.dtype} and {kinds.dtype}")
        if days.shape[1] > MAX_MESSAGES:
            raise ValueError(f"a message plan holds at most {MAX_MESSAGES} messages, got {days.shape[1]} columns")
        if np.any(days < 0):
            raise ValueError(f"message_day must be days after the visit (>= 1; 0 = no message), got {days.min()}")
        if np.any((kinds < 0) | (kinds >= len(MESSAGE_KINDS))):
            raise ValueError(f"message_kind must index {list(MESSAGE_KINDS)} (0..{len(MESSAGE_KINDS) - 1}), "
                             f"got {np.unique(kinds)[:5].tolist()}")
