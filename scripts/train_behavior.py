"""Train the DNN behaviour model on reference-world logs and write the shipped weights + card.

    python scripts/train_behavior.py                       # the shipped build (fixed seed, ~8 min on 2 cores)
    python scripts/train_behavior.py --sessions 2000 --slate-sessions 500 --out /tmp/b.pt   # a quick run

Reads top to bottom: log the reference world under the randomised logging policy
(recommend and slate sessions), split by time, train with early stopping,
calibrate, score on the held-out test split, save ``state_dict`` + JSON card.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, fields

import torch

from ecomsim.shoppers.behavior import FEATURE_VERSION, SessionTracker, save_weights
from ecomsim.shoppers.training import BehaviorTrainConfig, heldout_metrics, train_behavior
from ecomsim.config import CHANNELS, EnvConfig
from ecomsim.envs import build_core
from ecomsim.data.reference_logs import log_reference_world, merge_logs


@dataclass
class Args:
    sessions: int = 100_000  # recommend-mode sessions (one item per step)
    slate_sessions: int = 40_000  # slate sessions (5 items per step: position bias)
    slate_size: int = 5
    seed: int = 0
    hidden: int = 64
    max_epochs: int = 30
    patience: int = 4
    max_seconds: float = 3600.0  # a safety cap only: early stopping ends the shipped build (~13 epochs), so it stays deterministic
    threads: int = 1
    out: str = "ecomsim/assets/behavior.pt"
    log_dir: str | None = "runs/behavior"


def parse() -> Args:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(Args):
        flag = "--" + f.name.replace("_", "-")
        kind = float if f.type in ("float",) else int if f.type == "int" else str
        p.add_argument(flag, type=kind, default=f.default)
    return Args(**vars(p.parse_args()))


def main() -> None:
    args = parse()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    parts = [log_reference_world(args.sessions, seed=args.seed, slate_size=1)]
    if args.slate_sessions:
        parts.append(log_reference_world(args.slate_sessions, seed=args.seed + 1, slate_size=args.slate_size,
                                         first_session=args.sessions))
    logs = merge_logs(parts)
    train, val, test = logs.split((0.8, 0.1, 0.1))
    log_seconds = time.perf_counter() - t0
    print(f"logged {len(logs.frame):,} impressions in {log_seconds:.0f}s; "
          f"train/val/test steps {[sum(len(s) for s in x.steps.values()) for x in (train, val, test)]}", flush=True)

    cfg = BehaviorTrainConfig(hidden=args.hidden, max_epochs=args.max_epochs, patience=args.patience, seed=args.seed,
                      threads=args.threads, max_seconds=args.max_seconds, log_dir=args.log_dir)
    net, history = train_behavior(train.steps, val.steps, cfg)
    for h in history:
        print(f"epoch {h['epoch']:2d} train {h['train_loss']:.4f} val {h['val_loss']:.4f} ({h['epoch_seconds']:.0f}s)", flush=True)
    metrics = heldout_metrics(net, test.steps)

    tracker = SessionTracker(build_core(EnvConfig(user_model="reference", catalog="reference"), 1))
    card = {
        "hidden": args.hidden,
        "feature_schema": {"version": FEATURE_VERSION, "user": tracker.user_names, "item": tracker.item_names,
                           "channels": list(CHANNELS)},
        "training_data": {
            "description": logs.description,
            "split": "time-ordered by session start: 80% train, 10% validation (early stopping, calibration), 10% test",
            "impressions": {"train": len(train.frame), "val": len(val.frame), "test": len(test.frame)},
        },
        "train": {"seed": args.seed, "epochs": len(history), "best_val_loss": min(h["val_loss"] for h in history),
                  "seconds": round(time.perf_counter() - t0, 1), "command": "python scripts/train_behavior.py"},
        "calibration": dict(zip(("click", "cart", "purchase", "leave"), net.calibration.tolist())),
        "test_metrics": metrics,
    }
    card = save_weights(net, args.out, card)
    print(json.dumps(card["test_metrics"], indent=2))
    print(f"wrote {args.out} (sha256 {card['sha256'][:12]}...) in {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
