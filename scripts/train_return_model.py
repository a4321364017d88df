"""Train the return-time model (the churn risk a shop can compute) on reference-world lifecycle logs.

    python scripts/train_return_model.py                       # the shipped build (ecomsim/assets/return_model.pt)
    python scripts/train_return_model.py --customers 2000 --heldout-customers 1000 --out /tmp/return.pt

Reads top to bottom: log ``--customers`` customers of ``ecomsim/Retention-v0`` from their
first purchase to the horizon or churn under the uniformly random logging policy
(``ecomsim.lifecycle.return_training``: every coupon and message plan appears) and
``--never-customers`` more under the do-nothing policy (the situation the exported churn
risk describes), fit the
discrete-time hazard network on them (early stopping on 15% of the customers), then
score its churn risk on ``--heldout-customers`` other customers (other seeds) who get
no coupon and no message: the AUC of "no visit in the next 30 days" next to the
reference world's Bayes-optimal risk (the issue's target: a ratio of at least 0.95).
The figures go into the card beside the weights.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from agents.cli import option, output_file, parse_args, pin_threads, run
from ecomsim.lifecycle.return_model import save_return_model
from ecomsim.lifecycle.return_training import (LifecycleLogs, ReturnTrainConfig, churn_auc, lifecycle_logs,
                                               train_return_model)


@dataclass
class Args:
    customers: int = option(30_000, min=1)
    """customers logged for training (random logging policy)"""
    never_customers: int = option(15_000, min=0)
    """customers logged for training under the do-nothing policy (no coupon, no message)"""
    heldout_customers: int = option(5_000, min=1)
    """other customers scored (no coupon, no message)"""
    user_model: str = "reference"
    """shoppers of the logged visits: reference or dnn"""
    seed: int = 0
    """seeds the training logs (seed, seed + 2), the held-out logs (seed + 1) and the training"""
    hidden: int = option(64, min=1)
    """hidden width"""
    epochs: int = option(60, min=1)
    """passes at most"""
    patience: int = option(5, min=1)
    """epochs without a better validation loss before stopping"""
    out: str = option("ecomsim/assets/return_model.pt", check=output_file)
    """weights file (the card goes beside it as .json)"""
    threads: int = option(1, min=1)
    """torch and BLAS threads"""

    def __post_init__(self) -> None:
        if not self.out.endswith(".pt"):
            raise ValueError(f"argument --out: expected a weights file ending in .pt (the card goes beside it as "
                             f".json), got {self.out!r}")
        if self.user_model not in ("reference", "dnn"):
            raise ValueError(f"argument --user-model: expected 'reference' or 'dnn', got {self.user_model!r}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    t0 = time.perf_counter()
    logs = lifecycle_logs(args.customers, args.seed, "random", args.user_model)
    if args.never_customers:
        logs = LifecycleLogs.concat([logs, lifecycle_logs(args.never_customers, args.seed + 2, "never",
                                                          args.user_model)])
    print(f"logged {len(logs):,} decisions of {args.customers + args.never_customers:,} customers in "
          f"{time.perf_counter() - t0:.0f}s", flush=True)
    cfg = ReturnTrainConfig(hidden=args.hidden, epochs=args.epochs, patience=args.patience, seed=args.seed)
    model, summary = train_return_model(logs, cfg)
    print(f"trained: {summary['epochs']:.0f} epochs, validation NLL {summary['val_nll']:.4f}", flush=True)
    held = lifecycle_logs(args.heldout_customers, args.seed + 1, "never", args.user_model)
    figures = churn_auc(model, held)
    card = {"hidden": args.hidden, "churn_days": held.churn_days, "training": summary,
            "heldout": figures, "logs": {"user_model": args.user_model, "policy": "random",
                                         "customers": args.customers, "seed": args.seed,
                                         "never_customers": args.never_customers,
                                         "heldout_customers": args.heldout_customers,
                                         "heldout_policy": "never (no coupon, no message, popularity)"},
            "command": "python scripts/train_return_model.py" + ("" if argv is None else " " + " ".join(argv)),
            "seconds": round(time.perf_counter() - t0, 1)}
    card = save_return_model(model.net, args.out, card)
    print(json.dumps(figures, indent=1))
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e3:.0f} kB, sha256 {card['sha256'][:12]}...) "
          f"in {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    run(main)
