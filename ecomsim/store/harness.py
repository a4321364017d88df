"""The demand-driven store simulation: a daily loop over ``num_stores`` stores at once.

Each day, for every store:

1. receive the deliveries due today (``StoreState.open_day``);
2. demand arrives and is sold (the :class:`~ecomsim.store.demand.DemandSource`);
   requests that find no stock are recorded as lost;
3. the forecaster observes the day's demand per item;
4. the policy orders per group, from the state and the forecast; the group orders
   are split over items by the forecaster's item weights;
5. the day is booked: revenue, cost of goods sold, holding cost on the stock left,
   fixed cost per order, lost margin on stock-outs (``StoreState.close_day``).

All randomness comes from one generator seeded by ``run(seed=...)``, handed to the
demand source: same seed, same history, bit for bit.
"""

from __future__ import annotations

import numpy as np

from ecomsim.errors import check_range
from ecomsim.store.demand import DemandSource
from ecomsim.store.forecast import DemandForecaster
from ecomsim.store.policies import ReplenishmentPolicy
from ecomsim.store.state import DayAccount, StoreState


class StoreHistory:
    """Every :class:`DayAccount` field of a run, stacked per store, day and group.

    ``history[name]`` is ``(num_stores, num_days, num_groups)`` (units int64,
    currency float64, see :class:`DayAccount`); :meth:`daily` sums over groups.
    """

    def __init__(self, accounts: list[DayAccount], group_names: tuple[str, ...]) -> None:
        if not accounts:
            raise ValueError("a history needs at least one day")
        self.group_names = group_names
        self.arrays = {name: np.stack([getattr(a, name) for a in accounts], axis=1) for name in DayAccount.names()}

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    @property
    def num_stores(self) -> int:
        return int(self.arrays["profit"].shape[0])

    @property
    def num_days(self) -> int:
        return int(self.arrays["profit"].shape[1])

    def daily(self, name: str) -> np.ndarray:
        """``(num_stores, num_days)`` the field summed over groups."""
        return self.arrays[name].sum(axis=2)


class StoreSimulation:
    """Runs the daily loop (module docstring) of ``state.num_stores`` stores.

    Args:
        state: the stores (reset by :meth:`run`).
        demand: the demand source.
        policy: the replenishment policy.
        forecaster: the demand forecaster (its item weights split group orders).
    """

    def __init__(self, state: StoreState, demand: DemandSource, policy: ReplenishmentPolicy,
                 forecaster: DemandForecaster) -> None:
        if forecaster.groups is not state.groups and not np.array_equal(forecaster.groups.group_of, state.groups.group_of):
            raise ValueError("the forecaster must use the store's item groups")
        self.state = state
        self.demand = demand
        self.policy = policy
        self.forecaster = forecaster

    def run(self, num_days: int, initial_rate: np.ndarray, seed: int | None = None) -> StoreHistory:
        """Simulate ``num_days`` days from ``StoreState.reset(initial_rate)``; returns the history.

        Args:
            num_days: days to simulate, >= 1.
            initial_rate: ``(num_items,)`` or ``(num_stores, num_items)`` expected units per
                day, for the initial fill.
            seed: seeds the demand source's generator.
        """
        check_range("num_days", num_days, 1, 1_000_000, integer=True)
        state = self.state
        state.reset(initial_rate)
        self.forecaster.reset(state.num_stores)
        self.policy.reset(state)
        self.demand.reset(state, np.random.default_rng(seed))
        accounts = []
        for day in range(num_days):
            state.open_day()
            self.demand.run_day(day, state)
            self.forecaster.observe(day, state.demand)
            horizon = self.policy.forecast_days
            forecast = self.forecaster.forecast(day, horizon) if horizon else None
            units = self.policy.order(state, forecast)
            state.place_orders(units, self.forecaster.item_weights())
            accounts.append(state.close_day())
        return StoreHistory(accounts, state.groups.names)
