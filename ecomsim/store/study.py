"""The store study: forecasts and replenishment baselines on demand from real shopper sessions.

:func:`store_study` records training and held-out demand trajectories from sessions
of an env under a recommendation policy (``ecomsim.store.sessions``), then

1. scores both forecasters on the held-out days (MAPE and WAPE per group and day,
   one day ahead, after a four-week warm-up): the behaviour forecast uses purchase
   rates measured on the training trajectories and the known traffic plan; the
   moving average uses each held-out store's own past;
2. runs every baseline on the held-out trajectories (one store per trajectory,
   replay without substitution) and reports ``profit_per_day``, ``stockout_rate``
   and ``inventory_turnover`` with 95% intervals over stores: never order,
   base stock with each forecaster, (s, S) at the search's starting point, and
   (s, S) tuned on the training trajectories (``ecomsim.store.tuning``).

Training and held-out trajectories come from disjoint seeds. ``scripts/store_study.py``
runs it from the command line.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ecomsim.store.config import StoreConfig, TrafficPlan
from ecomsim.store.demand import ReplayDemand
from ecomsim.store.forecast import BehaviorForecaster, DemandForecaster, MovingAverageForecaster, evaluate_forecaster
from ecomsim.store.harness import StoreSimulation
from ecomsim.store.items import ItemGroups, StoreItems
from ecomsim.store.metrics import store_metrics
from ecomsim.store.policies import BaseStock, NeverOrder, ReplenishmentPolicy, SsPolicy
from ecomsim.store.sessions import purchase_rates, record_trajectories
from ecomsim.store.state import StoreState
from ecomsim.store.tuning import SsGrid, replay_evaluator, ss_levels, tune_ss

WARMUP_DAYS = 28  # days a moving average sees before its forecasts are scored


def store_study(env, policy: Callable[[np.ndarray], np.ndarray], config: StoreConfig, num_days: int,
                train_seeds: list[int], test_seeds: list[int], review_days: int = 7,
                grid: SsGrid | None = None) -> dict:
    """Forecast errors and baseline scores on held-out session demand (module docstring); a JSON-friendly dict.

    Args:
        env: an :class:`~ecomsim.envs.EcomVectorEnv` (its catalog is the store's).
        policy: the recommendation policy's ``act`` on ``env``'s observations.
        config: the store (traffic, costs, lead times, grouping).
        num_days: days per trajectory, > ``WARMUP_DAYS``.
        train_seeds, test_seeds: disjoint trajectory seeds (``record_trajectories``).
        review_days: the base-stock review period, days.
        grid: the (s, S) search grid (default ``SsGrid()``).
    """
    if set(train_seeds) & set(test_seeds):
        raise ValueError(f"train_seeds and test_seeds must be disjoint, both hold {sorted(set(train_seeds) & set(test_seeds))}")
    if num_days <= WARMUP_DAYS:
        raise ValueError(f"num_days must exceed the {WARMUP_DAYS}-day forecast warm-up, got {num_days}")
    catalog = env.core.catalog
    traffic = TrafficPlan(config)
    items = StoreItems.from_catalog(catalog, config)
    groups = ItemGroups.from_config(catalog, config)
    train, train_sessions = record_trajectories(env, policy, traffic, num_days, train_seeds)
    test, _ = record_trajectories(env, policy, traffic, num_days, test_seeds)
    rates = purchase_rates(train, train_sessions)  # units per session
    daily_rate = rates * config.sessions_per_day  # units per average day

    def moving_average() -> DemandForecaster:
        return MovingAverageForecaster(groups, daily_rate)

    def behaviour() -> DemandForecaster:
        return BehaviorForecaster(groups, traffic, lambda: rates)

    forecasts = {name: evaluate_forecaster(make(), test, first_day=WARMUP_DAYS).to_dict()
                 for name, make in (("moving_average", moving_average), ("behavior", behaviour))}

    group_mean = groups.totals(train.mean(axis=(0, 1)))  # units per day, training data
    evaluate = replay_evaluator(lambda n: StoreState(config, items, groups, n), train, daily_rate, moving_average(), seed=0)
    grid = grid or SsGrid()
    start = (3.0, 7.0)
    tuned = tune_ss(evaluate, group_mean, grid=grid, start=start)
    policies: list[tuple[str, ReplenishmentPolicy, Callable[[], DemandForecaster]]] = [
        ("never_order", NeverOrder(), moving_average),
        ("base_stock_moving_average", BaseStock(review_days), moving_average),
        ("base_stock_behavior", BaseStock(review_days), behaviour),
        ("s_S_untuned", SsPolicy(*ss_levels(group_mean, *start)), moving_average),
        ("s_S_tuned", tuned.policy(), moving_average),
    ]
    scores = {}
    for name, replenish, forecaster in policies:
        state = StoreState(config, items, groups, test.shape[0])
        history = StoreSimulation(state, ReplayDemand(test), replenish, forecaster()).run(num_days, daily_rate, seed=0)
        scores[name] = {k: v.to_dict() for k, v in store_metrics(history).items()}
    return {
        "catalog_items": catalog.num_items,
        "groups": list(groups.names),
        "sessions_per_day": config.sessions_per_day,
        "days": num_days,
        "train_seeds": list(train_seeds),
        "test_seeds": list(test_seeds),
        "units_per_session": float(rates.sum()),
        # demand the measured rates cannot see: items never bought in the training trajectories
        "held_out_demand_share_on_items_unseen_in_training": float(test[:, :, rates == 0].sum() / max(test.sum(), 1)),
        "units_per_day_by_group": dict(zip(groups.names, group_mean.round(3).tolist(), strict=True)),
        "forecast_error_1_day_ahead": forecasts,
        "s_S_tuned": {"reorder_days": tuned.reorder_days.tolist(), "gap_days": tuned.gap_days.tolist(),
                      "reorder_point": tuned.reorder_point.tolist(), "order_up_to": tuned.order_up_to.tolist(),
                      "training_profit_per_day": tuned.profit, "store_runs": tuned.evaluations},
        "policies": scores,
    }
