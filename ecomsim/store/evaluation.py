"""Scoring replenishment policies on ``Inventory-v0``: whole store episodes, metrics with 95% intervals over stores.

Every policy runs in the same env (shopper sessions every day, ``ecomsim.store.inventory``)
on the same store seeds: store ``k`` is an episode reset with ``seed0 + k`` whatever the
policy (the traffic and the sessions' keys are drawn from that seed day by day, so
policies meet the same shoppers until their stock makes the sessions differ).

* :func:`baseline_orders`: the store layer's baselines as an order function of the env:
  never order, base stock with either forecaster, (s, S).
* :func:`run_store`: one episode of an order function (units per group) or of an agent
  (actions); returns the episode's :class:`~ecomsim.store.harness.StoreHistory`.
* :func:`evaluate_orders`: many stores; per-store metrics and their 95% intervals
  (``ecomsim.store.metrics``: ``profit_per_day``, ``stockout_rate``, ``inventory_turnover``).
* :func:`tune_ss_on_sessions`: (s, S) tuned on separate seeds, by replay (``ecomsim.store.tuning``)
  of the demand recorded from session episodes run under base stock: the search needs
  thousands of store-runs, so it replays what the shoppers asked for (sales and lost
  sales) instead of rerunning them; how the shoppers would have substituted under another
  stock is not in a replay (the tuned policy is then scored on sessions like the others).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ecomsim.metrics import Estimate, mean_normal
from ecomsim.store.forecast import MovingAverageForecaster
from ecomsim.store.harness import StoreHistory
from ecomsim.store.inventory import InventoryEnv
from ecomsim.store.metrics import per_store_metrics
from ecomsim.store.policies import BaseStock, NeverOrder, ReplenishmentPolicy
from ecomsim.store.state import StoreState
from ecomsim.store.tuning import SsGrid, SsTuning, replay_evaluator, tune_ss

#: ``order(env, obs) -> (num_groups,) units`` (orders in units) or, for an agent, ``act(obs) -> action``
OrderFn = Callable[[InventoryEnv, np.ndarray], np.ndarray]
BASELINES = ("never_order", "base_stock_moving_average", "base_stock_behavior")


def policy_orders(policy: ReplenishmentPolicy, forecaster: str) -> OrderFn:
    """An order function from a store-layer policy reading the env's ``forecaster`` (``moving_average`` / ``behavior``)."""
    state: dict = {}

    def order(env: InventoryEnv, obs: np.ndarray) -> np.ndarray:
        if state.get("env") is not env or env.state.day == 0:
            policy.reset(env.state)
            state["env"] = env
        fc = env.moving_average if forecaster == "moving_average" else env.behavior
        forecast = fc.forecast(env.state.day, policy.forecast_days) if policy.forecast_days else None
        order.weights = fc.item_weights()
        return policy.order(env.state, forecast)[0]

    order.weights = None
    return order


def baseline_orders(name: str, review_days: int = 7, safety_z: float = 1.65) -> OrderFn:
    """The order function of baseline ``name`` (:data:`BASELINES`)."""
    if name == "never_order":
        return policy_orders(NeverOrder(), "moving_average")
    if name == "base_stock_moving_average":
        return policy_orders(BaseStock(review_days, safety_z), "moving_average")
    if name == "base_stock_behavior":
        return policy_orders(BaseStock(review_days, safety_z), "behavior")
    raise ValueError(f"baseline must be one of {list(BASELINES)}, got {name!r}")


def run_store(env: InventoryEnv, seed: int, order: OrderFn | None = None,
              act: Callable[[np.ndarray], np.ndarray] | None = None) -> StoreHistory:
    """One episode from ``reset(seed=seed)``: orders in units by ``order``, or actions by ``act`` (exactly one)."""
    if (order is None) == (act is None):
        raise ValueError("give exactly one of order (units per group) and act (the env's actions)")
    obs, _ = env.reset(seed=seed)
    while True:
        if act is not None:
            obs, _, _, truncated, _ = env.step(act(obs))
        else:
            units = order(env, obs)
            obs, _, _, truncated, _ = env.advance(units, getattr(order, "weights", None))
        if truncated:
            return StoreHistory(env.accounts, env.groups.names)


def evaluate_orders(env: InventoryEnv, seeds: list[int], order: OrderFn | None = None,
                    act: Callable[[np.ndarray], np.ndarray] | None = None,
                    keep: int = 1) -> tuple[dict[str, np.ndarray], list[StoreHistory]]:
    """Per-store metrics ``{name: (len(seeds),)}`` over ``seeds``, and the histories of the first ``keep`` stores."""
    values: dict[str, list[float]] = {}
    kept = []
    for k, seed in enumerate(seeds):
        history = run_store(env, seed, order, act)
        for name, v in per_store_metrics(history).items():
            values.setdefault(name, []).append(float(v[0]))
        if k < keep:
            kept.append(history)
    return {k: np.asarray(v) for k, v in values.items()}, kept


def intervals(per_store: dict[str, np.ndarray]) -> dict[str, Estimate]:
    """Mean and 95% normal interval over stores of each metric (stores with ``nan`` left out)."""
    return {k: mean_normal(v[np.isfinite(v)]) for k, v in per_store.items()}


def record_demand(env: InventoryEnv, seeds: list[int], order: OrderFn) -> np.ndarray:
    """``(len(seeds), horizon_days, num_items)`` int64: each day's demand (sales and lost sales) under ``order``."""
    out = []
    for seed in seeds:
        history = []
        obs, _ = env.reset(seed=seed)
        history.append(env.state.demand[0].copy())
        while True:
            obs, _, _, truncated, _ = env.advance(order(env, obs), getattr(order, "weights", None))
            if truncated:
                break
            history.append(env.state.demand[0].copy())
        out.append(np.stack(history))
    return np.stack(out)


def tune_ss_on_sessions(env: InventoryEnv, seeds: list[int], grid: SsGrid | None = None,
                        sweeps: int = 3) -> tuple[SsTuning, np.ndarray]:
    """(s, S) per group tuned on the demand of ``seeds`` (module docstring); returns the tuning and that demand."""
    demand = record_demand(env, seeds, baseline_orders("base_stock_moving_average"))
    keeper = env.keeper
    evaluate = replay_evaluator(lambda n: StoreState(env.store_config, keeper.items, keeper.groups, n), demand,
                                keeper.daily_rate, MovingAverageForecaster(env.groups, keeper.daily_rate), seed=0)
    mean = env.groups.totals(demand.mean(axis=(0, 1)))
    return tune_ss(evaluate, mean, grid=grid, sweeps=sweeps), demand
