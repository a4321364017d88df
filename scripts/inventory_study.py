"""The Inventory-v0 study: both demand forecasts' errors and the replenishment baselines, on simulated stores.

Everything runs on ``ecomsim/Inventory-v0``: each store-day is that day's shopper sessions
on the batched core, selling from the store's stock (``ecomsim.store.inventory``).

1. **Forecasts.** ``--forecast-stores`` store episodes under base stock with the
   moving-average forecast; each day the env's info carries both forecasters' forecast of
   the next day's demand per group (``forecast_moving_average``, ``forecast_behavior``),
   scored against that day's demand (MAPE over the group-days with demand, and WAPE),
   after ``--warmup-days`` days.
2. **Policies.** Never order, base stock with each forecaster, and (s, S) tuned on
   ``--tune-stores`` other stores, each on the same ``--stores`` held-out store seeds:
   profit per store-day, stock-out rate and inventory turnover with 95% intervals over
   stores (``agents.store_eval.compare_store_policies``). ``--stores 0`` skips them.

    python scripts/inventory_study.py --user-model reference --stores 40
    python scripts/inventory_study.py --user-model reference --stores 4 --forecast-stores 2 --horizon-days 60 --json
    python scripts/inventory_study.py --user-model reference --stores 0 --env-options '{"promotion_days": [40, 50, 60], "promotion_lift": 2.0}'

With promotion days among the scored days, the forecast errors are also reported on those
days alone (``forecast_error_promotion_days``): the traffic plan knows them in advance.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np

from agents.cli import option, options_with_flags, parse_args, pin_threads, run
from agents.store_eval import compare_store_policies, store_table
from ecomsim.registration import store_env_kwargs
from ecomsim.store.evaluation import baseline_orders
from ecomsim.store.forecast import forecast_error
from ecomsim.store.inventory import InventoryEnv

FORECASTS = ("moving_average", "behavior")


@dataclass
class Args:
    user_model: Literal["dnn", "reference"] = "dnn"
    """the shoppers (the reference world is faster)"""
    sessions_per_day: int | None = option(None, min=1)
    """expected sessions on an average day (default: Inventory-v0's, 200)"""
    horizon_days: int | None = option(None, min=1)
    """days per store episode (default: 180)"""
    stores: int = option(40, min=0)
    """held-out store episodes per policy (0: forecasts only)"""
    tune_stores: int = option(4, min=1)
    """store episodes whose demand tunes the (s, S) baseline"""
    forecast_stores: int = option(8, min=1)
    """store episodes scored for the forecast errors"""
    warmup_days: int = option(28, min=0)
    """days of each forecast episode left unscored (the moving average's warm-up)"""
    env_options: str = "{}"
    """more Inventory-v0 options, a JSON object (e.g. '{"promotion_days": [40, 50], "promotion_lift": 2.0}')"""
    seed: int = 0
    """held-out stores are seed + 1000000 + k, tuning stores seed + 2000000 + k, forecast stores seed + 3000000 + k"""
    json: bool = False
    """print the result as JSON (one object)"""
    threads: int = option(1, min=1)
    """torch and BLAS threads"""


def forecast_errors(options: dict, seeds: list[int], warmup_days: int) -> tuple[dict[str, dict], float, dict | None]:
    """Both forecasters' 1-day-ahead errors over the episodes of ``seeds`` under base stock (module docstring), the
    mean units demanded per scored store-day, and the errors on the scored promotion days alone (None without)."""
    env = InventoryEnv(**options)
    horizon = env.store_config.horizon_days
    if warmup_days >= horizon - 1:
        raise ValueError(f"warmup_days must be below horizon_days - 1 = {horizon - 1}, got {warmup_days}")
    order = baseline_orders("base_stock_moving_average")
    made = {name: [] for name in FORECASTS}
    actual, promoted = [], []
    promotion_days = set(env.store_config.promotion_days or ())
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        while True:
            forecasts = {name: info[f"forecast_{name}"] for name in FORECASTS}  # of the next day, made today
            day = info["day"]
            obs, _, _, truncated, info = env.advance(order(env, obs), order.weights)
            if truncated:
                break
            if day + 1 >= warmup_days:
                actual.append(info["day_demand"])
                promoted.append(day + 1 in promotion_days)
                for name in FORECASTS:
                    made[name].append(forecasts[name])
    if not actual:
        raise ValueError(f"no day scored: warmup_days={warmup_days} leaves none of the {horizon} days")
    truth, on = np.stack(actual), np.array(promoted)
    errors = {name: forecast_error(truth, np.stack(made[name])).to_dict() for name in FORECASTS}
    promotion = {name: forecast_error(truth[on], np.stack(made[name])[on]).to_dict() for name in FORECASTS} \
        if on.any() else None
    return errors, float(truth.sum(axis=1).mean()), promotion


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    options = store_env_kwargs("ecomsim/Inventory-v0", **options_with_flags(
        "--env-options", args.env_options, user_model=args.user_model, sessions_per_day=args.sessions_per_day,
        horizon_days=args.horizon_days))
    InventoryEnv(**options)  # bad options fail here, before any work
    start = time.time()
    forecast_seeds = [args.seed + 3_000_000 + k for k in range(args.forecast_stores)]
    errors, demand, promotion = forecast_errors(options, forecast_seeds, args.warmup_days)
    result: dict = {"options": options, "forecast_seeds": forecast_seeds, "forecast_error_1_day_ahead": errors,
                    "forecast_error_promotion_days": promotion,
                    "mean_units_demanded_per_day": round(demand, 2), "forecast_seconds": round(time.time() - start, 1)}
    log = (lambda line: None) if args.json else print
    log(f"Inventory-v0 {options}")
    log(f"forecast, 1 day ahead, per group-day, {args.forecast_stores} stores after day {args.warmup_days}: "
        f"MAPE / WAPE (scored / zero-demand group-days); {demand:.1f} units demanded a day")
    for name, err in result["forecast_error_1_day_ahead"].items():
        log(f"  {name:<16} {err['mape']:.3f} / {err['wape']:.3f}   ({err['num_scored']} / {err['num_zero']})")
    for name, err in (promotion or {}).items():
        log(f"  {name:<16} {err['mape']:.3f} / {err['wape']:.3f}   ({err['num_scored']} / {err['num_zero']}) "
            "on the promotion days alone")
    if args.stores:
        seeds = [args.seed + 1_000_000 + k for k in range(args.stores)]
        tune_seeds = [args.seed + 2_000_000 + k for k in range(args.tune_stores)]
        log(f"\npolicies on {args.stores} held-out stores (95% intervals over stores):")
        policies = compare_store_policies(options, seeds, tune_seeds, log=log)
        policies.pop("histories")
        result.update(seeds=seeds, **policies)
        log("\n" + store_table(policies["scores"]))
    result["seconds"] = round(time.time() - start, 1)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"\n{result['seconds']} s")
    return 0


if __name__ == "__main__":
    run(main)
