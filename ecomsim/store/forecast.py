"""Demand forecasts per ordering group, and their error on held-out days.

Every forecaster answers, at the end of day ``t`` (after observing its demand),
``forecast(t, h)``: expected units demanded per group on days ``t + 1 .. t + h``,
``(num_stores, h, num_groups)`` float64; and ``item_weights()``: each item's share
of its group's demand, used to split a group order over its items.

* :class:`MovingAverageForecaster`: what the store's own sales history says, with
  a weekday pattern learnt from the history.
* :class:`BehaviorForecaster`: what the shoppers' behaviour says: expected traffic
  times the expected units of each item bought per session, a callable: in
  ``Inventory-v0`` the shopper model's own purchase probabilities over the day's
  sessions (``ecomsim.store.traffic``); in the replay study a rate measured on training
  sessions (:func:`ecomsim.store.sessions.purchase_rates`).

Forecasts are of *demand* (units requested, sold or not): the store records
requests that found no stock, so the history is not censored by stock-outs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from ecomsim.errors import check_range
from ecomsim.store.config import TrafficPlan
from ecomsim.store.items import ItemGroups


class DemandForecaster(ABC):
    """Daily demand per group for the coming days (see the module docstring)."""

    def __init__(self, groups: ItemGroups) -> None:
        self.groups = groups
        self.num_stores = 1

    def reset(self, num_stores: int) -> None:
        """Forget the history; ``num_stores`` stores are forecast side by side."""
        self.num_stores = int(num_stores)

    def observe(self, day: int, item_demand: np.ndarray) -> None:
        """Record day ``day``'s demand ``(num_stores, num_items)`` units (days come in order)."""

    @abstractmethod
    def forecast(self, day: int, horizon: int) -> np.ndarray:
        """``(num_stores, horizon, num_groups)`` float64 expected units on days ``day + 1 .. day + horizon``."""

    @abstractmethod
    def item_weights(self) -> np.ndarray:
        """``(num_stores, num_items)`` float64 >= 0, each item's share of its group's forecast demand (any scale)."""


class MovingAverageForecaster(DemandForecaster):
    """Weekday-adjusted moving average of each group's daily demand.

    With ``y[t, g]`` the demand of group ``g`` on day ``t`` and ``w(t) = t % 7``:

    * weekday factors ``f[w]`` = mean store total (all groups) on weekday ``w`` /
      mean store total per day, over the last ``season_weeks`` whole weeks; shared by
      the groups, because the weekday pattern is in the traffic, not in the items
      (pooling also keeps them steady on sparse groups). ``f = 1`` until
      ``min_weeks`` whole weeks are seen; a weekday with no demand at all gets 0;
    * level ``l[g]`` = mean of ``y[t, g] / f[w(t)]`` over the last ``window`` days
      (fewer at the start; days with ``f = 0`` count as 0);
    * forecast for day ``d``: ``l[g] * f[w(d)]``.

    Before any day is seen the level is the prior (``prior_rate`` summed per group).
    Item weights: an exponentially weighted average of each item's daily demand
    (half-life ``item_halflife`` days) started at ``prior_rate``, so an item not yet
    sold keeps its prior share instead of dropping to zero.

    State: ``history`` ``(num_stores, memory, num_groups)`` float64 units per group and
    day, a ring indexed by ``day % memory`` (``memory = max(window, 7 * season_weeks)``);
    ``item_avg`` ``(num_stores, num_items)`` float64 units per day, the item weights.

    Args:
        groups: the ordering groups.
        prior_rate: ``(num_items,)`` float64 expected units per day per item before any data.
        window: days in the moving average, >= 1.
        season_weeks: whole weeks used for the weekday factors, >= 1.
        min_weeks: whole weeks needed before weekday factors are used, in [1, season_weeks].
        item_halflife: half-life of the item weights, days (> 0).
    """

    def __init__(self, groups: ItemGroups, prior_rate: np.ndarray, window: int = 28, season_weeks: int = 8,
                 min_weeks: int = 2, item_halflife: float = 28.0) -> None:
        super().__init__(groups)
        check_range("window", window, 1, 10_000, integer=True)
        check_range("season_weeks", season_weeks, 1, 1_000, integer=True)
        check_range("min_weeks", min_weeks, 1, season_weeks, integer=True)
        check_range("item_halflife", item_halflife, 1e-6, 1e6)
        prior = np.asarray(prior_rate, dtype=np.float64)
        if prior.shape != (groups.num_items,) or not np.all(np.isfinite(prior)) or (prior < 0).any():
            raise ValueError(f"prior_rate must be ({groups.num_items},) finite units per day >= 0, got shape {prior.shape}")
        self.prior_rate = prior
        self.window = window
        self.season_weeks = season_weeks
        self.min_weeks = min_weeks
        self.alpha = 1.0 - 0.5 ** (1.0 / item_halflife)
        self.memory = max(window, 7 * season_weeks)  # days of group history kept
        self.reset(1)

    def reset(self, num_stores: int) -> None:
        super().reset(num_stores)
        self.history = np.zeros((self.num_stores, self.memory, self.groups.num_groups))  # ring by day % memory
        self.seen = 0  # days observed
        self.item_avg = np.broadcast_to(self.prior_rate, (self.num_stores, self.groups.num_items)).copy()

    def observe(self, day: int, item_demand: np.ndarray) -> None:
        if day != self.seen:
            raise ValueError(f"days must be observed in order from 0: expected day {self.seen}, got {day}")
        d = np.asarray(item_demand, dtype=np.float64)
        self.history[:, day % self.memory] = self.groups.totals(d)
        self.item_avg += self.alpha * (d - self.item_avg)
        self.seen += 1

    def weekday_factors(self) -> np.ndarray:
        """``(num_stores, 7)`` float64 weekday factors from the history (rule in the class docstring)."""
        weeks = min(self.seen // 7, self.season_weeks)
        if weeks < self.min_weeks:
            return np.ones((self.num_stores, 7))
        days = np.arange(self.seen - 7 * weeks, self.seen)
        totals = self.history[:, days % self.memory].sum(axis=2)  # (S, 7 * weeks)
        by_weekday = np.zeros((self.num_stores, 7))
        np.add.at(by_weekday.T, days % 7, totals.T)
        mean = by_weekday.mean(axis=1, keepdims=True)
        return np.divide(by_weekday, mean, out=np.ones_like(by_weekday), where=mean > 0)

    def forecast(self, day: int, horizon: int) -> np.ndarray:
        if self.seen == 0:
            level = np.broadcast_to(self.groups.totals(self.prior_rate), (self.num_stores, self.groups.num_groups))
            factors = np.ones((self.num_stores, 7))
        else:
            factors = self.weekday_factors()
            days = np.arange(max(0, self.seen - self.window), self.seen)
            f = factors[:, days % 7][:, :, None]  # (S, n, 1)
            y = self.history[:, days % self.memory]  # (S, n, G)
            level = np.divide(y, f, out=np.zeros_like(y), where=f > 0).mean(axis=1)
        ahead = (day + 1 + np.arange(horizon)) % 7
        return level[:, None, :] * factors[:, ahead][:, :, None]

    def item_weights(self) -> np.ndarray:
        return self.item_avg


class BehaviorForecaster(DemandForecaster):
    """Expected traffic times expected purchases per session: ``traffic.expected(d) * sum_{i in g} rate[i]``.

    Args:
        groups: the ordering groups.
        traffic: the store's traffic plan (weekday pattern and promotion days are known in advance).
        purchase_rates: called once per observed day (and at the start): returns
            ``(num_items,)`` or ``(num_stores, num_items)`` float64, expected units of each
            item bought per session: in ``Inventory-v0`` from the shopper model's purchase
            probabilities under the recommender and the stock (``ecomsim.store.traffic``); in
            the replay study measured from sessions (:func:`ecomsim.store.sessions.purchase_rates`).
    """

    def __init__(self, groups: ItemGroups, traffic: TrafficPlan, purchase_rates: Callable[[], np.ndarray]) -> None:
        super().__init__(groups)
        self.traffic = traffic
        self.purchase_rates = purchase_rates
        self.reset(1)

    def reset(self, num_stores: int) -> None:
        super().reset(num_stores)
        self._refresh()

    def _refresh(self) -> None:
        rates = np.asarray(self.purchase_rates(), dtype=np.float64)
        n = self.groups.num_items
        if rates.shape not in ((n,), (self.num_stores, n)) or not np.all(np.isfinite(rates)) or (rates < 0).any():
            raise ValueError(
                f"purchase_rates() must return ({n},) or ({self.num_stores}, {n}) finite units per session >= 0, "
                f"got shape {rates.shape}"
            )
        self.rates = np.broadcast_to(rates, (self.num_stores, n))
        self.group_rates = self.groups.totals(self.rates)  # (S, G) units per session

    def observe(self, day: int, item_demand: np.ndarray) -> None:
        self._refresh()

    def forecast(self, day: int, horizon: int) -> np.ndarray:
        sessions = self.traffic.expected(day + 1 + np.arange(horizon))  # (h,)
        return sessions[None, :, None] * self.group_rates[:, None, :]

    def item_weights(self) -> np.ndarray:
        return self.rates


# ====================================================================== errors
@dataclass(frozen=True)
class ForecastError:
    """Errors of forecasts against actual demand, per (store, day, group) entry.

    Attributes:
        mape: mean absolute percentage error, ``mean(|f - a| / a)`` over the entries
            with actual demand ``a > 0`` (a share: 0.25 is 25%). Entries with ``a = 0``
            are left out (the ratio is undefined there) and counted in ``num_zero``;
            ``nan`` when every entry is zero.
        wape: weighted absolute percentage error, ``sum |f - a| / sum a`` over all
            entries, zero-demand ones included (what MAPE leaves out still counts here).
        num_scored: entries in the MAPE.
        num_zero: entries with zero actual demand.
    """

    mape: float
    wape: float
    num_scored: int
    num_zero: int

    def to_dict(self) -> dict:
        return asdict(self)


def forecast_error(actual: np.ndarray, forecast: np.ndarray) -> ForecastError:
    """:class:`ForecastError` of ``forecast`` against ``actual`` (same shape, units >= 0)."""
    a = np.asarray(actual, dtype=np.float64)
    f = np.asarray(forecast, dtype=np.float64)
    if a.shape != f.shape:
        raise ValueError(f"forecast must have the shape of actual {a.shape}, got {f.shape}")
    pos = a > 0
    err = np.abs(f - a)
    mape = float((err[pos] / a[pos]).mean()) if pos.any() else float("nan")
    total = float(a.sum())
    wape = float(err.sum() / total) if total > 0 else float("nan")
    return ForecastError(mape=mape, wape=wape, num_scored=int(pos.sum()), num_zero=int((~pos).sum()))


def evaluate_forecaster(forecaster: DemandForecaster, demand: np.ndarray, first_day: int, ahead: int = 1) -> ForecastError:
    """Run ``forecaster`` through ``demand`` day by day and score its ``ahead``-day forecasts.

    At the end of each day ``t`` it observes ``demand[:, t]`` and forecasts day
    ``t + ahead``; forecasts of days ``>= first_day`` are scored (the days before are
    its warm-up), so only the past is ever used.

    Args:
        demand: ``(num_stores, num_days, num_items)`` int units (held-out trajectories).
        first_day: first scored day, in ``[ahead, num_days)``.
        ahead: days ahead, >= 1.
    """
    d = np.asarray(demand)
    if d.ndim != 3 or d.shape[2] != forecaster.groups.num_items:
        raise ValueError(f"demand must be (num_stores, num_days, num_items={forecaster.groups.num_items}), got {d.shape}")
    num_days = d.shape[1]
    check_range("ahead", ahead, 1, num_days - 1, integer=True)
    check_range("first_day", first_day, ahead, num_days - 1, integer=True)
    forecaster.reset(d.shape[0])
    predicted, actual = [], []
    for t in range(num_days - ahead):
        forecaster.observe(t, d[:, t])
        if t + ahead >= first_day:
            predicted.append(forecaster.forecast(t, ahead)[:, -1])
            actual.append(forecaster.groups.totals(d[:, t + ahead]))
    return forecast_error(np.stack(actual, axis=1), np.stack(predicted, axis=1))
