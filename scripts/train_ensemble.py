"""Train the behaviour ensemble: K behaviour models on bootstrap resamples of the reference-world logs.

    python scripts/train_ensemble.py                    # the shipped build (5 members, fixed seeds)
    python scripts/train_ensemble.py --members 3 --sessions 3000 --slate-sessions 1000 --out /tmp/ens.pt
    python scripts/train_ensemble.py --sessions 10000 --slate-sessions 4000 --out runs/thin_ensemble.pt  # thin data
    python scripts/train_ensemble.py --sessions 10000 --logging greedy --logging-epsilon 0.01 --out runs/greedy.pt

The last two build ensembles on thin and on purchase-greedy logs, models an agent can exploit
(``docs/trust.md`` has the exact commands of its figures);
``--logging greedy,random,popularity,click_greedy`` gives each member its own logging behaviour.

Reads top to bottom: log the reference world exactly as ``scripts/train_behavior.py`` does
(the same sessions, seeds and time split: the members see the shipped model's data), then
for each member ``j``: a bootstrap resample of the training sessions (``numpy`` generator
seeded ``[seed, j]``), training from seed ``seed + 1 + j`` with early stopping and Platt
calibration on the (fixed) validation split, the held-out test metrics. All members go into
one weights file with one card (``ecomsim.shoppers.ensemble``), read by the env options
``shopper_sampling``, ``uncertainty_penalty`` and ``ensemble_member``.

Members differ by their data and their initialisation only: their spread is the learned
shoppers' uncertainty where the logs are thin (see ``docs/trust.md``).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np

from agents.cli import one_of, option, output_file, parse_args, pin_threads, run
from ecomsim.data.reference_logs import BEHAVIOURS, LoggingPolicy, training_logs
from ecomsim.shoppers.behavior import reference_feature_schema
from ecomsim.shoppers.ensemble import bootstrap_sessions, save_ensemble
from ecomsim.shoppers.training import BehaviorTrainConfig, heldout_metrics, train_behavior


@dataclass
class Args:
    members: int = option(5, min=2)
    """ensemble members"""
    sessions: int = option(100_000, min=1)
    """recommend-mode sessions logged (as scripts/train_behavior.py)"""
    slate_sessions: int = option(40_000, min=0)
    """slate sessions logged; 0 for none"""
    slate_size: int = option(5, min=1)
    """items per step of the slate sessions"""
    logging: tuple[str, ...] = option(("mix",), check=one_of(("mix", *BEHAVIOURS)))
    """the logging policy: 'mix' (the shipped logs' mix of behaviours) or one behaviour for every session (random,
    popularity, click_greedy, greedy: biased logs, the learned shoppers see little of what it does not show); several
    (comma-separated): member j's logs are the (j mod count)-th, each logged from the same sessions and seeds"""
    logging_epsilon: float = option(0.1, min=0)
    """share of uniform exploration in the logging policy (in (0, 1]; the shipped logs' 0.1)"""
    seed: int = 0
    """seeds the logs (seed, seed + 1), the bootstrap draws ([seed, j]) and the training (seed + 1 + j)"""
    hidden: int = option(64, min=1)
    """hidden width of every member"""
    max_epochs: int = option(30, min=1)
    """epochs at most, per member"""
    patience: int = option(4, min=1)
    """epochs without a better validation loss before a member stops"""
    max_seconds: float = option(3600.0, min=0)
    """a safety cap per member only: early stopping ends the shipped build, so it stays deterministic"""
    out: str = option("ecomsim/assets/behavior_ensemble.pt", check=output_file)
    """weights file of all members (the card goes beside it as .json)"""
    threads: int = option(1, min=1)
    """torch and BLAS threads"""

    def __post_init__(self) -> None:
        if not self.out.endswith(".pt"):
            raise ValueError(f"argument --out: expected a weights file ending in .pt (the card goes beside it as "
                             f".json), got {self.out!r}")
        if not 0 < self.logging_epsilon <= 1:
            raise ValueError(f"argument --logging-epsilon: expected a share in (0, 1], got {self.logging_epsilon}")

    def logging_policy(self, name: str) -> LoggingPolicy:
        """The logging policy ``name`` (an entry of ``logging``) with ``logging_epsilon`` (the default one for 'mix'
        and epsilon 0.1)."""
        mix = LoggingPolicy().mix if name == "mix" else ((name, 1.0),)
        return LoggingPolicy(mix=mix, epsilon=self.logging_epsilon)


def one_or_each(values: dict[str, Any], key: str) -> dict[str, Any]:
    """``{key: value}`` for logs of one logging policy (the shipped card's layout), else
    ``{key_by_logging: values}``."""
    return {key: next(iter(values.values()))} if len(values) == 1 else {f"{key}_by_logging": values}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    t0 = time.perf_counter()
    logs = {name: training_logs(args.sessions, args.slate_sessions, args.seed, args.slate_size,
                                args.logging_policy(name)) for name in dict.fromkeys(args.logging)}
    splits = {name: log.split((0.8, 0.1, 0.1)) for name, log in logs.items()}
    print(f"logged {sum(len(log.frame) for log in logs.values()):,} impressions in {time.perf_counter() - t0:.0f}s",
          flush=True)
    # biased logs: the members are also scored on the same sessions logged under the shipped mix (their test split),
    # where the policies they will meet go
    biased = any(args.logging_policy(name) != LoggingPolicy() for name in logs)
    mix_test = training_logs(args.sessions, args.slate_sessions, args.seed, args.slate_size).split(
        (0.8, 0.1, 0.1))[2] if biased else None
    nets, members = [], []
    for j in range(args.members):
        t1 = time.perf_counter()
        logging = args.logging[j % len(args.logging)]
        train, val, test = splits[logging]
        sample = bootstrap_sessions(train.steps, np.random.default_rng([args.seed, j]))
        cfg = BehaviorTrainConfig(hidden=args.hidden, max_epochs=args.max_epochs, patience=args.patience,
                                  seed=args.seed + 1 + j, threads=args.threads, max_seconds=args.max_seconds)
        net, history = train_behavior(sample, val.steps, cfg)
        metrics = heldout_metrics(net, test.steps)
        nets.append(net)
        members.append({"seed": cfg.seed, "bootstrap_seed": [args.seed, j], "logging": logging, "epochs": len(history),
                        "best_val_loss": min(h["val_loss"] for h in history),
                        "train_steps": {str(k): len(s) for k, s in sample.items()},
                        "calibration": dict(zip(("click", "cart", "purchase", "leave"), net.calibration.tolist())),
                        "test_metrics": metrics, "seconds": round(time.perf_counter() - t1, 1)})
        print(f"member {j} ({logging} logs): {len(history)} epochs, click AUC {metrics['click_auc']:.4f} (ratio "
              f"{metrics['click_auc_ratio']:.3f}), purchase AUC {metrics['purchase_auc']:.4f} (ratio "
              f"{metrics['purchase_auc_ratio']:.3f}) in {time.perf_counter() - t1:.0f}s", flush=True)
        if mix_test is not None:
            mixed = members[-1]["test_metrics_mix_logs"] = heldout_metrics(net, mix_test.steps)
            print(f"  on the mix-logged test split: click AUC ratio {mixed['click_auc_ratio']:.3f}, purchase AUC "
                  f"ratio {mixed['purchase_auc_ratio']:.3f}, purchase ECE {mixed['purchase_ece']:.4f}", flush=True)
    card = {
        "hidden": args.hidden, "feature_schema": reference_feature_schema(), "members": members,
        "training_data": {
            **one_or_each({name: log.description for name, log in logs.items()}, "description"),
            "split": "time-ordered by session start: 80% train (bootstrap-resampled per member), 10% validation "
                     "(early stopping, calibration), 10% test",
            **one_or_each({name: {part: len(s.frame) for part, s in zip(("train", "val", "test"), split)}
                           for name, split in splits.items()}, "impressions"),
        },
        "train": {"seed": args.seed, "seconds": round(time.perf_counter() - t0, 1),
                  "command": "python scripts/train_ensemble.py" + ("" if argv is None else " " + " ".join(argv))},
    }
    card = save_ensemble(nets, args.out, card)
    print(json.dumps({f"member{j}": {k: m["test_metrics"][k] for k in ("click_auc", "purchase_auc", "click_ece")}
                      for j, m in enumerate(members)}, indent=1))
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e3:.0f} kB, sha256 {card['sha256'][:12]}...) "
          f"in {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    run(main)
