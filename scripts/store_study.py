"""The store study: forecast errors and replenishment baselines on demand from real shopper sessions.

Records demand trajectories from sessions of ``ecomsim/Recommend-v0`` under the
popularity policy (training and held-out seeds), then prints both forecasters'
MAPE / WAPE on the held-out days and every baseline's profit per day, stock-out
rate and inventory turnover with 95% intervals over the held-out stores
(``ecomsim.store.study``).

    python scripts/store_study.py --sessions-per-day 1000 --days 84 --train-seeds 0,1,2 --test-seeds 10,11,12,13,14,15,16,17
    python scripts/store_study.py --user-model dnn --json
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np

from agents.baselines import PopularityPolicy
from agents.cli import option, parse_args, pin_threads, run
from ecomsim.envs import EcomVectorEnv
from ecomsim.store.config import StoreConfig
from ecomsim.store.study import store_study


@dataclass
class Args:
    sessions_per_day: int = 1000
    """expected sessions on an average day"""
    days: int = option(84, min=1)
    """days per trajectory"""
    train_seeds: tuple[int, ...] = (0, 1, 2)
    """trajectory seeds for the purchase rates and the (s, S) tuning (comma-separated)"""
    test_seeds: tuple[int, ...] = tuple(range(10, 18))
    """held-out trajectory seeds (comma-separated)"""
    grouping: Literal["category", "top_n"] = "category"
    """order groups: one per category, or the top-N items plus the rest"""
    lead_time_days: int = 3
    """order lead time, days"""
    user_model: Literal["reference", "dnn"] = "reference"
    """the shoppers (the reference world is about 10x faster)"""
    num_envs: int = option(512, min=1)
    """sessions run side by side"""
    json: bool = False
    """print the result as JSON"""
    threads: int = option(1, min=1)
    """torch and BLAS threads"""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    config = StoreConfig(sessions_per_day=args.sessions_per_day, horizon_days=args.days, grouping=args.grouping,
                         lead_time_days=args.lead_time_days)
    env = EcomVectorEnv(num_envs=args.num_envs, user_model=args.user_model)
    policy = PopularityPolicy()
    policy.reset(env.core, np.random.default_rng(0))
    result = store_study(env, policy.act, config, args.days, list(args.train_seeds), list(args.test_seeds))
    result["user_model"] = args.user_model
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"store study: {args.user_model} shoppers, popularity recommendations, {result['catalog_items']} items, "
          f"{args.sessions_per_day} sessions/day, {args.days} days, {result['units_per_session']:.4f} units/session")
    print(f"train seeds {args.train_seeds}, held-out seeds {args.test_seeds}; held-out demand on items never bought in "
          f"training: {result['held_out_demand_share_on_items_unseen_in_training']:.2%}\n")
    print("forecast, 1 day ahead, per group-day   MAPE     WAPE   (scored / zero-demand group-days)")
    for name, err in result["forecast_error_1_day_ahead"].items():
        print(f"  {name:<32} {err['mape']:7.3f}  {err['wape']:7.3f}   ({err['num_scored']} / {err['num_zero']})")
    print("\npolicy (held-out stores)        profit_per_day                 stockout_rate            inventory_turnover")
    for name, m in result["policies"].items():
        cells = [f"{m[k]['value']:9.2f} [{m[k]['low']:8.2f}, {m[k]['high']:8.2f}]" if k == "profit_per_day"
                 else f"{m[k]['value']:6.3f} [{m[k]['low']:6.3f}, {m[k]['high']:6.3f}]"
                 for k in ("profit_per_day", "stockout_rate", "inventory_turnover")]
        print(f"  {name:<28} " + "   ".join(cells))
    return 0


if __name__ == "__main__":
    run(main)
