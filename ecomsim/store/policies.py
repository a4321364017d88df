"""Replenishment baselines: never order, order-up-to (base stock) with a forecast, and (s, S).

A policy decides at the end of each day, after the day's sales, how many units to
order per group: ``order(state, forecast)`` returns ``(num_stores, num_groups)``
int64 units. ``forecast`` is the forecaster's ``(num_stores, forecast_days,
num_groups)`` expected demand for the days after today.

Timing (``ecomsim.store.state``): an order placed at the end of day ``t`` with lead
time ``L`` is on the shelf from day ``t + L``; the order placed at the next review,
``R`` days later, is on the shelf from day ``t + R + L``. So today's order, with the
inventory position (on hand + on order), has to cover the demand of days
``t + 1 .. t + L + R - 1``: the *protection period* of ``L + R - 1`` days (the
textbook's "lead time plus review period", minus the day already sold, because
orders here go out after the day's sales).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ecomsim.errors import check_range
from ecomsim.store.state import StoreState


class ReplenishmentPolicy(ABC):
    """Order quantities per group from the store's state and a demand forecast."""

    name = "policy"
    #: days of forecast the policy reads (0: none)
    forecast_days = 0

    def reset(self, state: StoreState) -> None:
        """Called once before a run, after the state's reset."""

    @abstractmethod
    def order(self, state: StoreState, forecast: np.ndarray | None) -> np.ndarray:
        """``(num_stores, num_groups)`` int64 units to order at the end of today.

        ``forecast``: ``(num_stores, forecast_days, num_groups)`` expected units on the
        days after today; ``None`` when ``forecast_days`` is 0.
        """


class NeverOrder(ReplenishmentPolicy):
    """Sells the initial stock and never reorders (the floor every policy must beat)."""

    name = "never_order"

    def order(self, state: StoreState, forecast: np.ndarray) -> np.ndarray:
        return np.zeros((state.num_stores, state.num_groups), dtype=np.int64)


class BaseStock(ReplenishmentPolicy):
    """Order-up-to with a forecast: every ``review_days`` days, raise the position to the level.

    For group ``g`` with lead time ``L_g`` and protection period ``P_g = L_g + R - 1``
    days (module docstring): ``mu_g`` = forecast demand summed over days ``t + 1 ..
    t + P_g``; level = ``ceil(mu_g + safety_z * sqrt(mu_g))``; order
    ``max(0, level - position_g)`` units, at most ``max_order_units`` (a policy's own
    choice, not a user's input). The safety stock ``safety_z * sqrt(mu)`` is the
    Poisson standard deviation of demand over the period: session demand is a sum of
    many rare, independent purchases. ``safety_z = 1.65`` targets about a 95% chance
    of no stock-out in a period.

    Args:
        review_days: days between order opportunities ``R``, >= 1 (orders on days with
            ``day % review_days == 0``; each order pays the fixed cost, so R trades
            ordering cost for stock).
        safety_z: safety factor, >= 0.
    """

    name = "base_stock"

    def __init__(self, review_days: int = 7, safety_z: float = 1.65) -> None:
        check_range("review_days", review_days, 1, 3650, integer=True)
        check_range("safety_z", safety_z, 0.0, 10.0)
        self.review_days = review_days
        self.safety_z = safety_z

    def reset(self, state: StoreState) -> None:
        self.protection = state.group_lead + self.review_days - 1  # (G,) days
        self.forecast_days = int(self.protection.max())

    def levels(self, forecast: np.ndarray) -> np.ndarray:
        """``(num_stores, num_groups)`` int64 order-up-to levels from ``forecast`` ``(S, forecast_days, G)``."""
        cum = np.cumsum(forecast, axis=1)
        mu = cum[:, self.protection - 1, np.arange(cum.shape[2])]  # (S, G) demand over each group's period
        return np.ceil(mu + self.safety_z * np.sqrt(mu) - 1e-9).astype(np.int64)

    def order(self, state: StoreState, forecast: np.ndarray) -> np.ndarray:
        if state.day % self.review_days:
            return np.zeros((state.num_stores, state.num_groups), dtype=np.int64)
        gap = self.levels(forecast) - state.position()
        return np.clip(gap, 0, state.config.max_order_units)


class SsPolicy(ReplenishmentPolicy):
    """(s, S): reviewed daily; when a group's position is at or below ``s``, order up to ``S``.

    Args:
        reorder_point: ``(num_groups,)`` or ``(num_stores, num_groups)`` int units ``s`` >= 0.
        order_up_to: same shape, int units ``S > s``.
    """

    name = "s_S"

    def __init__(self, reorder_point: np.ndarray, order_up_to: np.ndarray) -> None:
        s = np.asarray(reorder_point)
        big = np.asarray(order_up_to)
        for name, arr in (("reorder_point", s), ("order_up_to", big)):
            if not np.issubdtype(arr.dtype, np.integer) or arr.ndim not in (1, 2):
                raise ValueError(f"{name} must be a 1-d or 2-d integer array of units, got dtype {arr.dtype} shape {arr.shape}")
        if s.shape != big.shape:
            raise ValueError(f"reorder_point and order_up_to must have one shape, got {s.shape} and {big.shape}")
        if (s < 0).any():
            raise ValueError(f"reorder_point must be >= 0 units, got {s[s < 0][:5].tolist()}")
        if (big <= s).any():
            bad = np.argwhere(big <= s)[0]
            raise ValueError(
                f"order_up_to must exceed reorder_point, got S={big[tuple(bad)]} <= s={s[tuple(bad)]} at {bad.tolist()}"
            )
        self.reorder_point = s.astype(np.int64)
        self.order_up_to = big.astype(np.int64)

    def reset(self, state: StoreState) -> None:
        shape = self.reorder_point.shape
        if shape not in ((state.num_groups,), (state.num_stores, state.num_groups)):
            raise ValueError(
                f"(s, S) must have shape ({state.num_groups},) or ({state.num_stores}, {state.num_groups}), got {shape}"
            )
        if (self.order_up_to > state.config.max_order_units).any():
            cap = state.config.max_order_units
            raise ValueError(f"order_up_to must be <= max_order_units={cap}, got {int(self.order_up_to.max())}")

    def order(self, state: StoreState, forecast: np.ndarray) -> np.ndarray:
        pos = state.position()
        return np.where(pos <= self.reorder_point, self.order_up_to - pos, 0).astype(np.int64)
