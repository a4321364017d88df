"""The store study: forecast errors and replenishment baselines on demand from real shopper sessions.

Records demand trajectories from sessions of ``ecomsim/Recommend-v0`` under the
popularity policy (training and held-out seeds), then prints both forecasters'
MAPE / WAPE on the held-out days and every baseline's profit per day, stock-out
rate and inventory turnover with 95% intervals over the held-out stores
(``ecomsim.store.study``).

    python scripts/store_study.py --sessions-per-day 1000 --days 84 --train-seeds 0 1 2 --test-seeds 10 11 12 13 14 15 16 17
    python scripts/store_study.py --user-model dnn --json
"""

from __future__ import annotations

import os

# one BLAS / OpenMP thread unless told otherwise (shared machines: see scripts/evaluate.py)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from agents.baselines import PopularityPolicy  # noqa: E402
from agents.cli import run  # noqa: E402
from ecomsim.envs import EcomVectorEnv  # noqa: E402
from ecomsim.store.config import StoreConfig  # noqa: E402
from ecomsim.store.study import store_study  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions-per-day", type=int, default=1000, help="expected sessions on an average day (default 1000)")
    p.add_argument("--days", type=int, default=84, help="days per trajectory (default 84)")
    p.add_argument("--train-seeds", type=int, nargs="+", default=[0, 1, 2], help="trajectory seeds for rates and tuning")
    p.add_argument("--test-seeds", type=int, nargs="+", default=list(range(10, 18)), help="held-out trajectory seeds")
    p.add_argument("--grouping", default="category", help="category | top_n (default category)")
    p.add_argument("--lead-time-days", type=int, default=3, help="order lead time, days (default 3)")
    p.add_argument("--user-model", default="reference", help="reference | dnn (default reference: 10x faster)")
    p.add_argument("--num-envs", type=int, default=512, help="sessions run side by side (default 512)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.num_envs < 1:
        raise ValueError(f"--num-envs must be >= 1, got {args.num_envs}")
    config = StoreConfig(sessions_per_day=args.sessions_per_day, horizon_days=args.days, grouping=args.grouping,
                         lead_time_days=args.lead_time_days)
    env = EcomVectorEnv(num_envs=args.num_envs, user_model=args.user_model)
    policy = PopularityPolicy()
    policy.reset(env.core, np.random.default_rng(0))
    result = store_study(env, policy.act, config, args.days, args.train_seeds, args.test_seeds)
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
