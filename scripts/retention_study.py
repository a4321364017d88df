"""The retention study: baseline policies on ``ecomsim/Retention-v0`` over many customers.

Tunes the churn rule's threshold and the myopic policy's strategy on separate customers,
then scores never-offer, always-10%, the churn rule and the myopic policy on the same
held-out customers (seeds ``seed .. seed + customers - 1``): profit per customer over
the horizon with a 95% bootstrap interval, and the share of customers not churned at day
90 / 180 / 365 with Wilson intervals (``agents.retention``).

    python scripts/retention_study.py --customers 1000 --tune-customers 200 --user-model reference
    python scripts/retention_study.py --customers 200 --json
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from agents.cli import option, parse_args, pin_threads, run


@dataclass
class Args:
    customers: int = option(1000, min=1)
    """held-out customers per policy"""
    tune_customers: int = option(200, min=1)
    """customers for tuning the churn threshold and the myopic strategy (seeds after the held-out ones)"""
    seed: int = option(0, min=0)
    """first held-out customer seed"""
    user_model: Literal["reference", "dnn"] = "dnn"
    """the visit sessions' shoppers"""
    horizon_days: int = option(365, min=1)
    """days from the first purchase to the end of an episode"""
    json: bool = False
    """print the result as JSON"""
    threads: int = option(1, min=1)
    """torch and BLAS threads"""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    from agents.retention import RETENTION_DAYS, compare_retention_policies
    from ecomsim.lifecycle.retention import RetentionEnv

    env = RetentionEnv(user_model=args.user_model, horizon_days=args.horizon_days)
    seeds = list(range(args.seed, args.seed + args.customers))
    tune = list(range(args.seed + args.customers, args.seed + args.customers + args.tune_customers))
    quiet = args.json
    result = compare_retention_policies(env, seeds, tune, log=(lambda s: None) if quiet else print)
    result.update(user_model=args.user_model, horizon_days=args.horizon_days, customers=args.customers,
                  tune_customers=args.tune_customers, seed=args.seed)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    days = [d for d in RETENTION_DAYS if d <= args.horizon_days]
    print(f"\nretention study: {args.user_model} shoppers, {args.customers} customers per policy, "
          f"{args.horizon_days} days")
    print(f"{'policy':<14}{'profit per customer':>32}" + "".join(f"{'retained day ' + str(d):>28}" for d in days))
    for name, s in result["scores"].items():
        p = s["profit_per_customer"]
        cells = [f"{p['value']:9.3f} [{p['low']:8.3f}, {p['high']:8.3f}]"]
        cells += [f"{s[f'retention_day_{d}']['value']:8.3f} [{s[f'retention_day_{d}']['low']:.3f}, "
                  f"{s[f'retention_day_{d}']['high']:.3f}]" for d in days]
        print(f"{name:<14}{cells[0]:>32}" + "".join(f"{c:>28}" for c in cells[1:]))
    return 0


if __name__ == "__main__":
    run(main)
