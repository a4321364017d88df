"""Store configuration (:class:`StoreConfig`) and the daily traffic it implies (:class:`TrafficPlan`).

One frozen dataclass, validated on construction like :class:`ecomsim.config.EnvConfig`:
a misspelt key fails with a "did you mean", an out-of-range value names the field,
the value and the valid range. Nothing is clipped silently. Options that depend on
the catalog (a per-group lead time list, per-category margins) are checked again
when the store is built on a catalog (:mod:`ecomsim.store.items`, :mod:`ecomsim.store.state`).

Day ``0`` is a Monday; weekday ``w = day % 7`` (0 Monday ... 6 Sunday).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ecomsim.errors import check_choice, check_range, suggest

GROUPINGS = ("category", "top_n")
REPLENISHMENTS = ("base_stock", "none")
MAX_LEAD_TIME_DAYS = 365
# Relative sessions per weekday, Monday first (mean 1). Illustrative, not calibrated:
# online shops see more visits early in the week and on Sunday, fewer on Friday and
# Saturday; the point is a weekday pattern a forecaster must learn, of a plausible size.
WEEKDAY_FACTORS = (1.08, 1.04, 1.00, 0.98, 0.92, 0.90, 1.08)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


@dataclass(frozen=True)
class StoreConfig:
    """Options of one store (JSON-friendly, so a future env id can register them as kwargs).

    Attributes:
        sessions_per_day: expected shopper sessions on an average day (the traffic), >= 1.
            Default 500: every store-day runs its sessions on the core, and the DNN
            shoppers ran ~850 sessions/s on one CPU core (512 at a time), so 500 keeps a
            store-day under a second while giving ~19 units of demand a day.
        weekday_factors: 7 relative traffic factors, Monday first (any positive scale:
            divided by their mean); ``None`` uses ``WEEKDAY_FACTORS``.
        promotion_days: day indexes in ``[0, horizon_days)`` whose traffic is
            multiplied by ``promotion_lift``; ``None`` for none.
        promotion_lift: traffic multiplier on promotion days, in [1, 100].
        grouping: how items are grouped for ordering: ``"category"`` (one group per
            catalog category) or ``"top_n"`` (each of the ``top_n`` most popular items
            is its own group, every other item is in one ``"rest"`` group).
        top_n: number of single-item groups when ``grouping="top_n"``.
        lead_time_days: days from placing an order to receiving it, >= 1: an order
            placed at the end of day ``t`` is on the shelf at the start of day
            ``t + lead_time_days`` (0 would mean selling goods the same day they are
            ordered, after that day's sales are over). One int for every group or
            a list with one int per group.
        initial_fill_days: initial stock, in days of expected demand per item
            (``ceil(initial_fill_days * rate)`` units, see ``StoreState.reset``).
        min_fill_units: an item starts stocked only when its expected demand over
            ``initial_fill_days`` is at least this many units, >= 0; the long tail below it
            starts empty (listed, out of stock until an order brings units). Default 0.5:
            in a long-tail catalog (the default one sells ~20 units a day over 2,000 items at
            500 sessions a day) rounding every item up to one unit would stock ~2,000 units of
            items that sell a few a year, and their units would hide the best sellers'
            stock-outs from a group's position for months. 0: every item with demand starts
            with at least one unit.
        margin: gross margin share of the price for every item, in (0, 1):
            unit cost = ``price * (1 - margin)``, currency units.
        category_margins: per-category margins overriding ``margin`` (category name ->
            share in (0, 1)); ``None`` for none.
        holding_cost_rate: holding cost per unit-day as a share of the unit cost
            (default 0.30 / 365: a yearly carrying cost of 30% of inventory value,
            the middle of the 20-30%+ range commonly quoted for retail).
        order_fixed_cost: currency units paid for each group order with a positive
            quantity (transport, handling), >= 0.
        lost_margin_weight: weight of the margin lost on demand that found no stock
            (stock-out cost = weight * lost units * (price - unit cost)), >= 0.
        max_order_units: cap on one group order, in units; an order above it is an
            error, not clipped (it guards against a runaway action).
        horizon_days: days of one store episode (the traffic plan's length).

    What stock does to shoppers (``ecomsim.sim.stock``; any env with inventory):

    Attributes:
        low_stock_units: an item with ``1..low_stock_units`` units on hand is shown as low
            ("only 3 left"), >= 0 (0: never).
        scarcity_lift: at low stock ``P(purchase | cart)`` is multiplied by ``1 + scarcity_lift``
            (capped at 1), in [0, 10]. Default 0.10: an illustrative, small scarcity effect
            (not calibrated).
        oos_leave: after a click on an out-of-stock item (and no purchase that step) the
            leave hazard ``h`` becomes ``1 - (1 - h) * (1 - oos_leave)``, in [0, 1].
        observe_profit: add the candidate feature ``unit_profit_share`` to the session ids'
            observation: ``x / (1 + x)`` with ``x = unit_profit / price``, what a unit bought is
            worth (its margin plus the holding cost its sale saves at today's days of cover,
            ``ecomsim.store.shop``) over its price. Off by default (the inventory observation
            of earlier releases); a recommender trained on ``reward="profit"`` needs it to see
            which items are overstocked.
        units_per_session: the catalog's purchase rate, units bought per session; item
            ``i`` is bought at ``units_per_session * popularity_i`` per session. It sets the
            initial fill and the other shoppers' demand of a session env, and the forecasts'
            prior. Default 0.04: what sessions under the popularity recommender bought
            (0.041 with DNN shoppers, 0.038 in the reference world; docs/inventory.md).

    The store of a session env (``Recommend-v0`` / ``Slate-v0`` with inventory, ``ecomsim.store.shop``):

    Attributes:
        steps_per_session: the session length the store's clock assumes, steps (> 0): a day
            lasts ``(1 - background_share) * sessions(d) * steps_per_session`` session-steps.
            Default 10: the mean session length under the popularity recommender (10.2
            steps with DNN shoppers, 10.3 in the reference world).
        background_share: share of the day's traffic not simulated session by session but
            drawn as other shoppers' demand, in [0, 0.999] (a single env is one shopper among
            many: e.g. 0.9).
        replenishment: the session env store's own ordering: ``"base_stock"`` (order-up-to
            with a moving-average forecast, ``ecomsim.store.policies.BaseStock``) or ``"none"``.
        review_days, safety_z: its review period (days) and safety factor.
    """

    sessions_per_day: int = 500
    weekday_factors: list[float] | None = field(default=None, hash=False)
    promotion_days: list[int] | None = field(default=None, hash=False)
    promotion_lift: float = 1.5
    grouping: str = "category"
    top_n: int = 20
    lead_time_days: int | list[int] = field(default=3, hash=False)
    initial_fill_days: float = 14.0
    min_fill_units: float = 0.5
    margin: float = 0.30
    category_margins: dict[str, float] | None = field(default=None, hash=False)
    holding_cost_rate: float = 0.30 / 365.0
    order_fixed_cost: float = 50.0
    lost_margin_weight: float = 1.0
    max_order_units: int = 100_000
    horizon_days: int = 180
    low_stock_units: int = 3
    scarcity_lift: float = 0.10
    oos_leave: float = 0.20
    observe_profit: bool = False
    units_per_session: float = 0.04
    steps_per_session: float = 10.0
    background_share: float = 0.0
    replenishment: str = "base_stock"
    review_days: int = 7
    safety_z: float = 1.65

    def __post_init__(self) -> None:
        check_range("sessions_per_day", self.sessions_per_day, 1, 100_000_000, integer=True)
        check_range("horizon_days", self.horizon_days, 1, 100_000, integer=True)
        self._check_traffic_shape()
        check_choice("grouping", self.grouping, GROUPINGS)
        check_range("top_n", self.top_n, 1, 1_000_000, integer=True)
        lead = self.lead_time_days
        if isinstance(lead, (list, tuple)):
            if not lead:
                raise ValueError("lead_time_days must be an int or a non-empty list of ints (one per group), got []")
            for g, value in enumerate(lead):
                check_range(f"lead_time_days[{g}]", value, 1, MAX_LEAD_TIME_DAYS, integer=True)
        else:
            check_range("lead_time_days", lead, 1, MAX_LEAD_TIME_DAYS, integer=True)
        check_range("initial_fill_days", self.initial_fill_days, 0.0, 3650.0)
        check_range("min_fill_units", self.min_fill_units, 0.0, 1e9)
        check_range("margin", self.margin, 0.0, 1.0)
        if not 0.0 < self.margin < 1.0:
            raise ValueError(f"margin must be in (0, 1) (unit cost = price * (1 - margin)), got {self.margin!r}")
        if self.category_margins is not None:
            if not isinstance(self.category_margins, Mapping) or not self.category_margins:
                raise TypeError(
                    f"category_margins must be a non-empty dict category name -> margin, got {self.category_margins!r}"
                )
            for name, value in self.category_margins.items():
                if not _is_number(value) or not 0.0 < value < 1.0:
                    raise ValueError(f"category_margins[{name!r}] must be a number in (0, 1), got {value!r}")
        check_range("holding_cost_rate", self.holding_cost_rate, 0.0, 1.0)
        check_range("order_fixed_cost", self.order_fixed_cost, 0.0, 1e12)
        check_range("lost_margin_weight", self.lost_margin_weight, 0.0, 1e6)
        check_range("max_order_units", self.max_order_units, 1, 10**12, integer=True)
        check_range("low_stock_units", self.low_stock_units, 0, 1_000_000, integer=True)
        check_range("scarcity_lift", self.scarcity_lift, 0.0, 10.0)
        check_range("oos_leave", self.oos_leave, 0.0, 1.0)
        if not isinstance(self.observe_profit, bool):
            raise TypeError(f"observe_profit must be true or false, got {self.observe_profit!r}")
        check_range("units_per_session", self.units_per_session, 1e-9, 1000.0)
        check_range("steps_per_session", self.steps_per_session, 1e-3, 100_000.0)
        check_range("background_share", self.background_share, 0.0, 0.999)
        check_choice("replenishment", self.replenishment, REPLENISHMENTS)
        check_range("review_days", self.review_days, 1, 3650, integer=True)
        check_range("safety_z", self.safety_z, 0.0, 10.0)

    def _check_traffic_shape(self) -> None:
        if self.weekday_factors is not None:
            wf = self.weekday_factors
            ok = isinstance(wf, (list, tuple)) and len(wf) == 7 and all(_is_number(v) and math.isfinite(v) and v > 0 for v in wf)
            if not ok:
                raise ValueError(f"weekday_factors must be 7 positive finite numbers, Monday first, got {wf!r}")
        if self.promotion_days is not None:
            days = self.promotion_days
            if not isinstance(days, (list, tuple)):
                raise TypeError(f"promotion_days must be a list of day indexes, got {days!r}")
            for d in days:
                check_range("promotion_days entry", d, 0, self.horizon_days - 1, integer=True)
            if len(set(days)) != len(days):
                raise ValueError(f"promotion_days must not repeat a day, got {list(days)}")
        check_range("promotion_lift", self.promotion_lift, 1.0, 100.0)

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any] | None = None, **overrides: Any) -> "StoreConfig":
        """Build a config from user keyword arguments, rejecting unknown keys with a suggestion."""
        merged = dict(kwargs or {})
        merged.update(overrides)
        names = [f.name for f in dataclasses.fields(cls)]
        for key in merged:
            if key not in names:
                raise TypeError(f"unknown store config key {key!r}.{suggest(key, names)} Valid keys: {names}")
        return cls(**merged)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def lead_times(self, num_groups: int) -> np.ndarray:
        """``(num_groups,)`` int64 lead time per group, days; a list must have one entry per group."""
        lead = self.lead_time_days
        if isinstance(lead, (list, tuple)):
            if len(lead) != num_groups:
                raise ValueError(
                    f"lead_time_days must have one entry per group (num_groups={num_groups}), got {len(lead)}: {list(lead)}"
                )
            return np.asarray(lead, dtype=np.int64)
        return np.full(num_groups, int(lead), dtype=np.int64)


class TrafficPlan:
    """Expected and sampled sessions per day: weekday pattern times promotion lift.

    ``expected(days)[d] = sessions_per_day * f[w(d)] / mean(f) * (promotion_lift if d
    is a promotion day else 1)``, sessions (float). The realised traffic of a day is
    Poisson around it (:meth:`sample`): visits are many independent arrivals.
    """

    def __init__(self, config: StoreConfig) -> None:
        factors = np.asarray(config.weekday_factors or WEEKDAY_FACTORS, dtype=np.float64)
        self.weekday_factors = factors / factors.mean()  # (7,) relative, mean 1
        self.sessions_per_day = float(config.sessions_per_day)
        self.promotion_days = frozenset(int(d) for d in (config.promotion_days or ()))
        self.promotion_lift = float(config.promotion_lift)

    def expected(self, days: np.ndarray) -> np.ndarray:
        """``(D,)`` float64 expected sessions of each day index in ``days`` ``(D,)``."""
        days = np.asarray(days, dtype=np.int64)
        out = self.sessions_per_day * self.weekday_factors[days % 7]
        if self.promotion_days:
            promo = np.isin(days, np.fromiter(self.promotion_days, dtype=np.int64))
            out = np.where(promo, out * self.promotion_lift, out)
        return out

    def sample(self, days: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(D,)`` int64 realised sessions, Poisson(expected)."""
        return rng.poisson(self.expected(days)).astype(np.int64)
