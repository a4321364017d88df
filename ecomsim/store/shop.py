"""The store a session core sells from: a :class:`~ecomsim.sim.stock.StockKeeper` over one :class:`StoreState`.

:class:`CoreStock` is the part every core with inventory needs: the store's stock row
(the very array the step kernels read and decrement, ``item_table.stock``), the
shopper-facing constants (``ecomsim.sim.stock``) and the books of every step (units
sold, units that found an empty shelf; ``StoreState.record``). ``Inventory-v0``
(``ecomsim.store.inventory``) drives the day itself on top of it.

:class:`SessionEnvStore` is the store of ``Recommend-v0`` / ``Slate-v0`` with inventory,
which also keeps the store's time while the sessions run:

* **Clock.** The store's clock counts *session-steps*: a single env's step is one, a
  vector env's step one per session stepped. Day ``d`` lasts
  ``L(d) = (1 - background_share) * sessions(d) * steps_per_session`` session-steps, with
  ``sessions(d)`` the traffic plan's expected sessions (weekday pattern, promotions): the
  env's own sessions are that share of the day's shoppers. A step's sales belong to the
  day in progress when the step began; the day closes before the first step that starts
  at or after its end (the excess carries over).
* **Other shoppers** (``background_share`` > 0). At a day's opening their demand is
  drawn: ``Poisson(background_share * sessions(d) * units_per_session * popularity_i)``
  units of each item ``i``, each arriving at a uniform time of the day; before each step
  the units that have arrived are sold (``StoreState.sell``, in arrival order; a unit
  that finds no stock is a lost sale). They compete with the env's sessions for the
  last units.
* **Replenishment** (``replenishment="base_stock"``). At a day's close the store orders
  by :class:`~ecomsim.store.policies.BaseStock` (``review_days``, ``safety_z``) with a
  :class:`~ecomsim.store.forecast.MovingAverageForecaster` of the store's own demand;
  deliveries arrive after the lead time, at the opening of their day (``StoreState``).
* **Restart.** A reset that gives every session a key (seeded, or the first) restarts
  the store at day 0 with ``initial_fill_days`` of expected demand per item, and seeds
  its generator (the other shoppers) from those keys, so a seeded env's store is
  reproducible. Autoresets and unseeded resets keep the day and the stock: the store
  outlives its sessions.

``reward="profit"`` (``unit_profit``, refreshed at every opening): a unit of item ``i``
bought is worth its margin ``price_i - unit_cost_i`` plus the holding cost its sale
saves, ``holding_cost_rate * unit_cost_i * min(cover_i, 365)`` with ``cover_i =
stock_i / (units_per_session * popularity_i * sessions_per_day)`` the days its stock
would last at the expected rate. The store books holding on every unit left at each
close; a unit sold now stops carrying its share. So an overstocked item's sale is worth
more than its margin, and a recommender trained on this reward can learn to sell down
overstock.
"""

from __future__ import annotations

import numpy as np

from ecomsim.catalog import Catalog
from ecomsim.sim.stock import params_array
from ecomsim.store.config import StoreConfig, TrafficPlan
from ecomsim.store.forecast import MovingAverageForecaster
from ecomsim.store.items import ItemGroups, StoreItems
from ecomsim.store.policies import BaseStock, NeverOrder, ReplenishmentPolicy
from ecomsim.store.state import DayAccount, StoreState

MAX_COVER_DAYS = 365.0  # cap of the days of cover in ``unit_profit`` (an item nobody buys would have no bound)


class CoreStock:
    """One store, as the :class:`~ecomsim.sim.stock.StockKeeper` of a core (module docstring).

    Args:
        config: the store's options.
        catalog: the core's catalog (the store stocks its items).

    Attributes:
        state: the :class:`StoreState` (one store); ``stock`` is its row 0.
        items, groups, traffic: economics, ordering groups and traffic plan.
        session_rate: ``(num_items,)`` float64 units of each item bought per session (the prior).
        daily_rate: ``(num_items,)`` float64 units per average day, ``session_rate * sessions_per_day``.
        cover: ``(num_items,)`` float64 days of cover ``min(stock / daily_rate, 365)`` at the day's opening
            (what ``unit_profit`` is built on; refreshed by :meth:`refresh_unit_profit`).
    """

    def __init__(self, config: StoreConfig, catalog: Catalog) -> None:
        self.config = config
        self.items = StoreItems.from_catalog(catalog, config)
        self.groups = ItemGroups.from_config(catalog, config)
        self.state = StoreState(config, self.items, self.groups, 1)
        self.traffic = TrafficPlan(config)
        self.session_rate = config.units_per_session * np.asarray(catalog.popularity, dtype=np.float64)
        self.daily_rate = self.session_rate * config.sessions_per_day
        self.stock = self.state.stock[0]  # a view: the kernels and the store write one array
        self.params = params_array(config.low_stock_units, config.scarcity_lift, config.oos_leave, config.observe_profit)
        self.unit_profit = self.items.unit_margin.copy()
        self.cover = np.zeros(catalog.num_items)  # days of cover at the day's opening, capped at MAX_COVER_DAYS
        self._holding = config.holding_cost_rate * self.items.unit_cost  # (I,) currency per unit-day

    def refresh_unit_profit(self) -> None:
        """``unit_profit`` at today's stock (definition in the module docstring)."""
        cover = np.divide(self.stock, self.daily_rate, out=np.full(self.stock.shape, MAX_COVER_DAYS),
                          where=self.daily_rate > 0)
        np.minimum(cover, MAX_COVER_DAYS, out=self.cover)
        self.unit_profit[:] = self.items.unit_margin + self._holding * self.cover

    # ------------------------------------------------------ StockKeeper
    def restart(self, keys: np.ndarray) -> None:
        """Nothing here: whoever drives the days restarts the store."""

    def before_step(self) -> None:
        """Nothing here: whoever drives the days moves the store's time."""

    def after_step(self, items: np.ndarray, purchased: np.ndarray, lost: np.ndarray, sessions: int) -> None:
        self.state.record(items[purchased], items[lost])


class SessionEnvStore(CoreStock):
    """The store of a session env with inventory: clock, other shoppers and replenishment (module docstring).

    Attributes:
        accounts: the :class:`DayAccount` of every closed day since the last restart.
        policy, forecaster: the store's replenishment and its forecast.
    """

    def __init__(self, config: StoreConfig, catalog: Catalog) -> None:
        super().__init__(config, catalog)
        self.forecaster = MovingAverageForecaster(self.groups, self.daily_rate)
        self.policy: ReplenishmentPolicy = (BaseStock(config.review_days, config.safety_z)
                                            if config.replenishment == "base_stock" else NeverOrder())
        self.accounts: list[DayAccount] = []
        self.restart(np.zeros(1, dtype=np.uint64))  # a valid store before any reset

    @property
    def day(self) -> int:
        return self.state.day

    def restart(self, keys: np.ndarray) -> None:
        self.rng = np.random.default_rng([int(k) for k in np.asarray(keys, dtype=np.uint64)])
        self.state.reset(self.daily_rate)
        self.forecaster.reset(1)
        self.policy.reset(self.state)
        self.accounts = []
        self._open()

    def _open(self) -> None:
        """Open ``state.day``: deliveries, the day's length and the other shoppers' demand."""
        state, config = self.state, self.config
        state.open_day()
        sessions = float(self.traffic.expected(np.array([state.day]))[0])
        self.day_steps = (1.0 - config.background_share) * sessions * config.steps_per_session
        self.clock = 0.0  # session-steps into the day
        if config.background_share > 0:
            counts = self.rng.poisson(config.background_share * sessions * self.session_rate)
            items = np.repeat(np.arange(counts.size), counts)
            arrival = self.rng.random(items.size) * self.day_steps
            order = np.argsort(arrival, kind="stable")
            self._arrivals, self._arrival_items = arrival[order], items[order]
        else:
            self._arrivals, self._arrival_items = np.zeros(0), np.zeros(0, dtype=np.int64)
        self._sold_to = 0  # other shoppers' units sold so far
        self.refresh_unit_profit()

    def _sell_background(self, until: float) -> None:
        stop = int(np.searchsorted(self._arrivals, until, side="right"))
        if stop > self._sold_to:
            items = self._arrival_items[self._sold_to : stop]
            self.state.sell(items, np.ones(items.size, dtype=np.int64))
            self._sold_to = stop

    def _close(self) -> None:
        state = self.state
        self._sell_background(np.inf)
        self.forecaster.observe(state.day, state.demand)
        horizon = self.policy.forecast_days
        forecast = self.forecaster.forecast(state.day, horizon) if horizon else None
        state.place_orders(self.policy.order(state, forecast), self.forecaster.item_weights())
        self.accounts.append(state.close_day())

    def before_step(self) -> None:
        while self.clock >= self.day_steps:
            carry = self.clock - self.day_steps
            self._close()
            self._open()
            self.clock = carry
        self._sell_background(self.clock)

    def after_step(self, items: np.ndarray, purchased: np.ndarray, lost: np.ndarray, sessions: int) -> None:
        super().after_step(items, purchased, lost, sessions)
        self.clock += sessions
