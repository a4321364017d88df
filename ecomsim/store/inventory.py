"""``ecomsim/Inventory-v0``: replenish a store whose demand is what simulated shoppers buy.

## Description
One store per episode, one step per day over ``horizon_days`` (default 180). Each day
the day's shoppers (``sessions_per_day``, a weekday pattern, optional promotion days:
``TrafficPlan``) run as sessions on the batched core, DNN shoppers by default, shown
what the ``recommender`` picks; they buy from the store's stock, and a shopper who meets
an empty shelf may buy something else later in the session or leave
(``ecomsim.store.traffic``, ``ecomsim.sim.stock``). At the end of the day the agent
orders per item group (``grouping``: categories, or the top-N items and the rest);
an order arrives after the lead time. The store's books are ``StoreState``'s.

## Action Space
``action="ladder"`` (default): ``MultiDiscrete([K] * G)``, ``G`` groups, ``K =
len(order_ladder)``. Rung ``a_g`` sets group ``g``'s order-up-to level to its planned
demand over the next ``order_ladder[a_g]`` days: ``ceil(mu_g * sum_d sessions(d) /
sessions_per_day)`` over those days (``mu_g`` below; ``sessions(d)`` the traffic plan,
weekdays and promotions known in advance; rung 0 is 0 days: order nothing). The env
orders the gap ``level - position`` (position = on hand + on order) when it is at least
``min_order_share * level`` (a minimum lot; default half the level, so holding one rung
is an ``(S/2, S)`` policy), else nothing. Why the plan and not a forecast from sales:
under a stock-aware recommender a group that runs out is no longer shown, its sales and
so its forecast fall to zero, and a level in days of that forecast would never restock
it (docs/inventory.md, section 5); the forecast is in the observation for the agent to use. ``action="units"``: ``Box(0, max_order_units, (G,))``, units per group,
rounded to the nearest whole unit. A quantity that is NaN, negative or above
``max_order_units`` (the cap against a runaway action, ladder levels included) is an
error naming the group and the value. Group orders go to items by fair share
(``ItemGroups.allocate``, weights from the forecaster).

## Observation Space
``Box(0, 1, (5 G + 9,))`` float32. Per group, with ``mu_g`` its expected demand per
average day before any data (``units_per_session * popularity * sessions_per_day``):
stock on hand and on order as days of cover ``x = units / mu_g``, squashed ``x / (x +
7)``; the last 7 days' mean daily sales, mean daily lost sales, and the forecast mean
daily demand of the next 7 days, each as ``r = value / mu_g`` squashed ``r / (r + 1)``.
Then the weekday of the coming day (one-hot, Monday first), the share of promotion days
among the next 7, and the share of the horizon gone.

## Rewards
The day's profit (``StoreState.close_day``: revenue - cost of goods sold - holding -
fixed cost per order - lost margin on stock-outs) divided by ``reward_scale``: the
expected gross margin of an average day, ``sum_i mu_i (price_i - unit_cost_i)``; so an
average day at full service and no costs is worth about 1.

## Episode End
Truncated after ``horizon_days`` steps (the store lives on; nothing terminates it).

## Info
The closed day's accounts summed over groups (``revenue``, ``profit``, ``demand``, ``sold``,
``lost``, ``stock``, ``on_order``, ``orders``, ...), ``day``, ``sessions``, the next day's
demand forecast per group by both forecasters (``forecast_moving_average``,
``forecast_behavior``, made after the day just simulated), ``day_demand`` (that day's
demand per group); at the last step the episode's ``profit_per_day``, ``stockout_rate``
and ``inventory_turnover`` (``ecomsim.store.metrics``).

## Version History
* v0: initial release.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from ecomsim.config import EnvConfig
from ecomsim.assembly import env_catalog, make_shopper
from ecomsim.sim.core import SimulationCore
from ecomsim.store.forecast import BehaviorForecaster, MovingAverageForecaster
from ecomsim.store.harness import StoreHistory
from ecomsim.store.inventory_config import InventoryConfig
from ecomsim.store.metrics import per_store_metrics
from ecomsim.store.shop import CoreStock
from ecomsim.store.traffic import SessionDemand

COVER_DAYS = 7.0  # days of cover mapped to 0.5 in the stock features
RECENT_DAYS = 7  # days of sales history and of forecast in the observation
ACCOUNT_KEYS = ("demand", "sold", "lost", "received", "ordered", "orders", "stock", "on_order", "items_out", "revenue",
                "cogs", "holding", "ordering", "stockout_cost", "profit", "inventory_value")


class InventoryEnv(gym.Env):
    """One store, one step per day (see the module docstring).

    Args:
        catalog_obj: an in-memory catalog (overrides ``catalog`` / ``num_items``).
        **kwargs: :class:`InventoryConfig` fields and ``StoreConfig`` fields, flat.
    """

    metadata = {"render_modes": []}

    def __init__(self, render_mode: str | None = None, catalog_obj=None, **kwargs: Any) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode must be None (Inventory-v0 has no rendering), got {render_mode!r}")
        self.render_mode = None
        self.config = cfg = InventoryConfig.from_kwargs(kwargs)
        self.store_config = store = cfg.store_config()
        session_config = EnvConfig(user_model=cfg.user_model, catalog=cfg.catalog, num_items=cfg.num_items)
        catalog = catalog_obj if catalog_obj is not None else env_catalog(cfg.catalog, cfg.num_items)
        self.keeper = keeper = CoreStock(store, catalog)
        self.core = SimulationCore(session_config, catalog, make_shopper(session_config), cfg.session_batch,
                                   stock=keeper)
        self.state, self.groups, self.traffic = keeper.state, keeper.groups, keeper.traffic
        self.demand = SessionDemand(self.core, keeper, self.traffic, cfg.recommender, cfg.probe_rows)
        self.moving_average = MovingAverageForecaster(self.groups, keeper.daily_rate)
        self.behavior_rate = keeper.session_rate.copy()  # (I,) units per session, the behaviour forecast's rates
        self.behavior = BehaviorForecaster(self.groups, self.traffic, lambda: self.behavior_rate)
        self.forecaster = self.moving_average if cfg.forecaster == "moving_average" else self.behavior
        self.group_rate = np.maximum(self.groups.totals(keeper.daily_rate), 1e-9)  # (G,) mu_g, units per day
        self.reward_scale = float(keeper.daily_rate @ keeper.items.unit_margin)
        self.ladder = np.asarray(cfg.order_ladder, dtype=np.int64)
        g = self.groups.num_groups
        if cfg.action == "ladder":
            self.action_space: spaces.Space = spaces.MultiDiscrete(np.full(g, len(self.ladder), dtype=np.int64))
        else:
            self.action_space = spaces.Box(0.0, float(store.max_order_units), (g,), dtype=np.float32)
        self.observation_space = spaces.Box(0.0, 1.0, (5 * g + 9,), dtype=np.float32)
        self._alpha = 1.0 - 0.5 ** (1.0 / cfg.behavior_halflife)
        self._needs_reset = True

    # ================================================================== api
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        state = self.state
        state.reset(self.keeper.daily_rate)
        self.moving_average.reset(1)
        self.behavior_rate = self.keeper.session_rate.copy()
        self.behavior.reset(1)
        self.demand.reset(state, self.np_random)
        self.accounts: list = []
        self._sold = np.zeros((RECENT_DAYS, self.groups.num_groups))  # ring of daily group sales
        self._lost = np.zeros((RECENT_DAYS, self.groups.num_groups))
        state.open_day()
        self._simulate_day()
        self._needs_reset = False
        return self._observation(), self._day_info()

    def step(self, action):
        return self.advance(self.order_units(action) if not self._needs_reset else None)

    def advance(self, units: np.ndarray | None, item_weights: np.ndarray | None = None):
        """:meth:`step` with the orders given in units: ``(num_groups,)`` whole units >= 0 (replenishment baselines).

        ``item_weights``: ``(num_items,)`` shares that split the group orders over items (default: the
        env's forecaster's). Bad quantities are errors naming the group (``StoreState.place_orders``).
        """
        if self._needs_reset:
            raise RuntimeError("call reset() before step(): the episode has ended or never started")
        state = self.state
        weights = self.forecaster.item_weights() if item_weights is None else item_weights
        state.place_orders(np.asarray(units)[None], weights)
        account = state.close_day()
        self.accounts.append(account)
        truncated = state.day >= self.store_config.horizon_days
        if not truncated:
            state.open_day()
            self._simulate_day()
        self._needs_reset = truncated
        info = {key: getattr(account, key)[0].sum() for key in ACCOUNT_KEYS}
        info.update(self._day_info())
        if truncated:
            history = StoreHistory(self.accounts, self.groups.names)
            info.update({k: float(v[0]) for k, v in per_store_metrics(history).items()})
        return self._observation(), float(account.profit.sum()) / self.reward_scale, False, truncated, info

    # ============================================================== orders
    def order_units(self, action) -> np.ndarray:
        """``(num_groups,)`` int64 units ordered for ``action`` (rules in the module docstring; bad input is an error)."""
        g, names, cap = self.groups.num_groups, self.groups.names, self.store_config.max_order_units
        arr = np.asarray(action)
        if arr.shape != (g,):
            raise ValueError(f"action must have shape (num_groups={g},) (one entry per group {list(names)}), "
                             f"got shape {arr.shape}")
        if self.config.action == "ladder":
            k = len(self.ladder)
            if not np.issubdtype(arr.dtype, np.integer):
                if not (np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
                    raise ValueError(f"action must be ladder rungs, integers in [0, {k - 1}], got {arr.tolist()}")
            for j, v in enumerate(arr.tolist()):
                if not 0 <= v < k:
                    raise ValueError(f"action for group {names[j]!r} must be a ladder rung in [0, {k - 1}], got {v!r}")
            days = self.ladder[arr.astype(np.int64)]
            ahead = self.state.day + 1 + np.arange(int(self.ladder.max()))
            plan = np.cumsum(self.traffic.expected(ahead)) / self.store_config.sessions_per_day  # (H,) average days
            level = np.where(days > 0, np.ceil(plan[np.maximum(days, 1) - 1] * self.group_rate - 1e-9), 0.0)
            gap = level - self.state.position()[0]
            units = np.where((gap > 0) & (gap >= self.config.min_order_share * level), gap, 0).astype(np.int64)
            over = np.flatnonzero(units > cap)
            if over.size:
                j = int(over[0])
                raise ValueError(f"order for group {names[j]!r} is {int(units[j])} units, above max_order_units={cap} "
                                 f"(rung {int(arr[j])}: {int(days[j])} days of planned demand)")
            return units
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise ValueError(f"action must be units per group (numbers), got dtype {arr.dtype}")
        for j, v in enumerate(arr.astype(np.float64).tolist()):
            if not np.isfinite(v) or v < 0 or v > cap:
                raise ValueError(f"order quantity for group {names[j]!r} must be a number of units in [0, "
                                 f"max_order_units={cap}], got {v!r}")
        return np.rint(arr.astype(np.float64)).astype(np.int64)

    # ================================================================= day
    def _simulate_day(self) -> None:
        """Run today's sessions, then let the forecasters see the day."""
        state, day = self.state, self.state.day
        self.demand.run_day(day, state)
        rate = self.demand.expected_rate
        if np.all(np.isfinite(rate)):
            self.behavior_rate += self._alpha * (rate - self.behavior_rate)
        self.moving_average.observe(day, state.demand)
        self.behavior.observe(day, state.demand)
        self._sold[day % RECENT_DAYS] = self.groups.totals(state.sold)[0]
        self._lost[day % RECENT_DAYS] = self.groups.totals(state.demand - state.sold)[0]

    def _day_info(self) -> dict[str, Any]:
        day = self.state.day
        return {
            "day": day, "sessions": self.demand.sessions,
            "day_demand": self.groups.totals(self.state.demand)[0].copy(),
            "forecast_moving_average": self.moving_average.forecast(day, 1)[0, 0],
            "forecast_behavior": self.behavior.forecast(day, 1)[0, 0],
        }

    def _observation(self) -> np.ndarray:
        state, mu = self.state, self.group_rate
        day = state.day
        seen = min(day + 1, RECENT_DAYS)

        def cover(units: np.ndarray) -> np.ndarray:
            x = units / mu
            return x / (x + COVER_DAYS)

        def ratio(per_day: np.ndarray) -> np.ndarray:
            r = per_day / mu
            return r / (r + 1.0)

        ahead = day + 1 + np.arange(RECENT_DAYS)
        promo = np.isin(ahead, list(self.traffic.promotion_days)).mean() if self.traffic.promotion_days else 0.0
        weekday = np.zeros(7)
        weekday[(day + 1) % 7] = 1.0
        parts = [cover(self.groups.totals(state.stock)[0].astype(np.float64)),
                 cover(self.groups.totals(state.on_order())[0].astype(np.float64)),
                 ratio(self._sold.sum(axis=0) / seen), ratio(self._lost.sum(axis=0) / seen),
                 ratio(self.forecaster.forecast(day, RECENT_DAYS)[0].mean(axis=0)),
                 weekday, [promo, min(1.0, day / self.store_config.horizon_days)]]
        return np.concatenate(parts).astype(np.float32)


class InventoryVectorEnv(VectorEnv):
    """``num_envs`` independent stores (one :class:`InventoryEnv` each, its own core), ``NEXT_STEP`` autoreset.

    Sub-env ``i`` reset with ``seed=s`` follows a single env reset with ``seed=s + i``.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, **kwargs: Any) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.num_envs = int(num_envs)
        self.envs = [InventoryEnv(**kwargs) for _ in range(self.num_envs)]
        self.single_action_space = self.envs[0].action_space
        self.single_observation_space = self.envs[0].observation_space
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        seeds = [None if seed is None else seed + i for i in range(self.num_envs)] if not isinstance(seed, list) else seed
        if len(seeds) != self.num_envs:
            raise ValueError(f"seed must be an int or a list of num_envs={self.num_envs} seeds, got {len(seeds)}")
        obs, infos = [], {}
        for i, (env, s) in enumerate(zip(self.envs, seeds)):
            o, info = env.reset(seed=s)
            obs.append(o)
            infos = self._add_info(infos, info, i)
        self._autoreset[:] = False
        return np.stack(obs), infos

    def step(self, actions):
        obs, rewards = [], np.zeros(self.num_envs)
        terminated, truncated = np.zeros(self.num_envs, dtype=bool), np.zeros(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {}
        for i, env in enumerate(self.envs):
            if self._autoreset[i]:
                o, info = env.reset()
            else:
                o, rewards[i], terminated[i], truncated[i], info = env.step(actions[i])
            obs.append(o)
            infos = self._add_info(infos, info, i)
        self._autoreset = terminated | truncated
        return np.stack(obs), rewards, terminated, truncated, infos
