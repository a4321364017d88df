"""Train the DNN behaviour model on reference-world logs and write the shipped weights + card.

    python scripts/train_behavior.py                       # the shipped build (fixed seed, ~8 min on 2 cores)
    python scripts/train_behavior.py --sessions 2000 --slate-sessions 500 --out /tmp/b.pt   # a quick run
    python scripts/train_behavior.py --data obd:random/all --hidden 16 --out /tmp/obd.pt   # the OBD sample (needs obp)
    python scripts/train_behavior.py --dp-epsilon 3 --out runs/private/behavior.pt   # DP-SGD (needs opacus)

Reads top to bottom: log the reference world under the randomised logging policy
(recommend and slate sessions), split by time, train with early stopping,
calibrate, score on the held-out test split, save ``state_dict`` + JSON card.

With ``--data obd:POLICY/CAMPAIGN`` the model learns clicks from an Open Bandit Dataset
file instead: the one-hot encoding is fitted on the training split's rows, stored in
the card (``obd_encoding``) and applied unchanged to every other OBD file, which the
script then scores (unseen categories counted; ``ecomsim.data.obd.ObdEncoding``). Its card
carries its own feature version (``OBD_FEATURE_VERSION``): the simulator refuses it by name.

With ``--dp-epsilon E`` the model is trained with DP-SGD (``ecomsim.shoppers.private``, the
optional extra ``private``: Opacus) to epsilon ``E``, one session as the privacy unit, for
``--dp-epochs`` passes (no early stopping); the card gets a ``privacy`` entry (epsilon, delta,
noise multiplier, what epsilon covers and what it does not: the calibration split). The
privacy table at epsilon 1 / 3 / 8 is ``scripts/privacy_report.py``'s.

Every epoch ends with a checkpoint (``--checkpoint``); Ctrl-C or SIGTERM stops within
a batch, keeps the last epoch's checkpoint and prints the command that resumes
(``--resume``: the logs are rebuilt from the seed, training continues bit for bit);
exit status 130 or 143.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np

from agents.cli import option, or_empty, output_dir, output_file, parse_args, pin_threads, run
from agents.signals import resume_command, stop_signals, stopped
from ecomsim.data.obd import OBD_CAMPAIGNS, OBD_POLICIES, load_obd
from ecomsim.data.schema import split_sessions_by_time
from ecomsim.errors import TrainingStopped, check_choice
from ecomsim.config import CHANNELS
from ecomsim.data.reference_logs import training_logs
from ecomsim.shoppers.behavior import reference_feature_schema
from ecomsim.shoppers.weights import OBD_FEATURE_VERSION, save_weights
from ecomsim.shoppers.training import BehaviorTrainConfig, auc, ece, heldout_metrics, predict_steps, train_behavior


OBD_SOURCES = tuple(f"obd:{p}/{c}" for p in OBD_POLICIES for c in OBD_CAMPAIGNS)
DEFAULT_OUT = "ecomsim/assets/behavior.pt"


def positive(value: float) -> None:
    """A ``check``: a number > 0."""
    if not value > 0:
        raise ValueError(f"expected a number > 0, got {value!r}")


@dataclass
class Args:
    data: str = "reference"
    """training logs: 'reference' (the reference world, logged here) or obd:POLICY/CAMPAIGN (e.g. obd:random/all)"""
    sessions: int = option(100_000, min=1)
    """recommend-mode sessions logged (one item per step)"""
    slate_sessions: int = option(40_000, min=0)
    """slate sessions logged (--slate-size items per step: position bias); 0 for none"""
    slate_size: int = option(5, min=1)
    """items per step of the slate sessions"""
    seed: int = 0
    """seeds the logs (seed, seed + 1) and the training"""
    hidden: int = option(64, min=1)
    """hidden width of the network"""
    max_epochs: int = option(30, min=1)
    """epochs at most"""
    patience: int = option(4, min=1)
    """epochs without a better validation loss before stopping"""
    max_seconds: float = option(3600.0, min=0)
    """a safety cap only: early stopping ends the shipped build (~13 epochs), so it stays deterministic"""
    threads: int = option(1, min=1)
    """torch and BLAS threads"""
    out: str = option(DEFAULT_OUT, check=output_file)
    """weights file (the card is written beside it)"""
    log_dir: str = option("runs/behavior", check=or_empty(output_dir))
    """TensorBoard directory ('' for none)"""
    checkpoint: str = option("runs/behavior/checkpoint.pt", check=or_empty(output_file))
    """end-of-epoch checkpoint file ('' for none)"""
    resume: bool = False
    """continue from --checkpoint (same seed, logs and options)"""
    dp_epsilon: float | None = option(None, check=positive)
    """train with DP-SGD (Opacus) to this epsilon, one session as the privacy unit; epsilon and delta go into the card"""
    dp_delta: float | None = option(None, check=positive)
    """delta of the private run (default: 1 / (10 x training sessions))"""
    dp_epochs: int = option(4, min=1)
    """DP-SGD passes over the sessions (no early stopping: it would spend privacy)"""
    dp_batch_sessions: int = option(512, min=1)
    """expected sessions per Poisson-sampled DP-SGD batch"""
    dp_max_grad_norm: float = option(1.0, check=positive)
    """clipping norm of each session's gradient"""
    dp_lr: float = option(1e-2, check=positive)
    """Adam learning rate of DP-SGD"""

    def __post_init__(self) -> None:
        check_choice("argument --data", self.data, ("reference", *OBD_SOURCES))
        if not self.out.endswith(".pt"):
            raise ValueError(f"argument --out: expected a weights file ending in .pt (the card goes beside it as .json), "
                             f"got {self.out!r}")
        if self.resume and not self.checkpoint:
            raise ValueError("argument --resume: needs a --checkpoint file to continue from, got --checkpoint ''")
        if self.resume and not Path(self.checkpoint).is_file():
            raise ValueError(f"argument --resume: no checkpoint at --checkpoint {self.checkpoint!r}; train without --resume first")
        if self.dp_epsilon is not None:
            if self.data != "reference":
                raise ValueError(f"argument --dp-epsilon: private training reads the reference-world logs, got --data {self.data}")
            if self.resume:
                raise ValueError("argument --dp-epsilon: a private run cannot --resume (its privacy accounting covers one run)")
            if self.out == DEFAULT_OUT:
                raise ValueError(f"argument --dp-epsilon: give --out for the private model (the default {DEFAULT_OUT} is "
                                 "the shipped model's file)")
            if self.dp_delta is not None and not self.dp_delta < 1:
                raise ValueError(f"argument --dp-delta: expected a number in (0, 1), got {self.dp_delta}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    if args.data != "reference":
        return train_obd(args, argv)
    t0 = time.perf_counter()
    logs = training_logs(args.sessions, args.slate_sessions, args.seed, args.slate_size)
    train, val, test = logs.split((0.8, 0.1, 0.1))
    log_seconds = time.perf_counter() - t0
    print(f"logged {len(logs.frame):,} impressions in {log_seconds:.0f}s; "
          f"train/val/test steps {[sum(len(s) for s in x.steps.values()) for x in (train, val, test)]}", flush=True)

    extra: dict = {}
    if args.dp_epsilon is not None:
        net, extra["privacy"] = fit_private(args, train.steps, val.steps)
        record = {"seed": args.seed, "epochs": args.dp_epochs, "mechanism": "DP-SGD (ecomsim.shoppers.private)",
                  "command": "python scripts/train_behavior.py " + " ".join(argv or sys.argv[1:])}
        uses = "10% validation (Platt calibration, treated as public: not covered by epsilon)"
        print(f"DP-SGD: epsilon {extra['privacy']['epsilon']:.3f} at delta {extra['privacy']['delta']:.2e} "
              f"(noise multiplier {extra['privacy']['noise_multiplier']:.3f}, {extra['privacy']['steps']} steps)")
    else:
        cfg = BehaviorTrainConfig(hidden=args.hidden, max_epochs=args.max_epochs, patience=args.patience,
                                  seed=args.seed, threads=args.threads, max_seconds=args.max_seconds,
                                  log_dir=args.log_dir or None)
        net, history = fit(args, argv, cfg, train.steps, val.steps)
        if net is None:
            return history
        for h in history:
            print(f"epoch {h['epoch']:2d} train {h['train_loss']:.4f} val {h['val_loss']:.4f} "
                  f"({h['epoch_seconds']:.0f}s)", flush=True)
        record = {"seed": args.seed, "epochs": len(history), "best_val_loss": min(h["val_loss"] for h in history),
                  "command": "python scripts/train_behavior.py"}
        uses = "10% validation (early stopping, calibration)"
    metrics = heldout_metrics(net, test.steps)
    card = {
        "hidden": args.hidden,
        "feature_schema": reference_feature_schema(),
        "training_data": {
            "description": logs.description,
            "split": f"time-ordered by session start: 80% train, {uses}, 10% test",
            "impressions": {"train": len(train.frame), "val": len(val.frame), "test": len(test.frame)},
        },
        "train": {**record, "seconds": round(time.perf_counter() - t0, 1)},
        "calibration": dict(zip(("click", "cart", "purchase", "leave"), net.calibration.tolist())),
        "test_metrics": metrics,
        **extra,
    }
    card = save_weights(net, args.out, card)
    print(json.dumps(card["test_metrics"], indent=2))
    print(f"wrote {args.out} (sha256 {card['sha256'][:12]}...) in {time.perf_counter() - t0:.0f}s")
    return 0


def fit_private(args: Args, train, val):
    """DP-SGD at ``--dp-epsilon``: ``(net, privacy record)`` (epsilon, delta, what is and is not covered)."""
    from ecomsim.shoppers.private import PrivateTrainConfig, train_private

    cfg = PrivateTrainConfig(target_epsilon=args.dp_epsilon, delta=args.dp_delta, epochs=args.dp_epochs,
                             batch_sessions=args.dp_batch_sessions, max_grad_norm=args.dp_max_grad_norm, lr=args.dp_lr,
                             hidden=args.hidden, seed=args.seed, threads=args.threads)
    return train_private(train, val, cfg)


def fit(args: Args, argv: list[str] | None, cfg: BehaviorTrainConfig, train, val):
    """Train under the stop signals: ``(net, history)``, or ``(None, exit status)`` when a signal stopped it."""
    with stop_signals() as stop:
        try:
            with stop.deferred():
                return train_behavior(train, val, cfg, checkpoint=args.checkpoint or None, resume=args.resume,
                                      should_stop=stop)
        except TrainingStopped as exc:
            return None, stopped(stop, exc, resume_command("scripts/train_behavior.py", argv))


def click_scores(net, steps: dict) -> dict[str, float]:
    """Click AUC, ECE and rates of the model on logged steps (OBD logs clicks only)."""
    y = np.concatenate([s.click.ravel() for s in steps.values()])
    p = np.concatenate([predict_steps(net, s)["click"].ravel() for s in steps.values()])
    return {"click_auc": auc(y, p), "click_ece": ece(y, p), "click_rate": float(y.mean()),
            "click_rate_model": float(p.mean()), "impressions": int(len(y)), "clicks": int(y.sum())}


def train_obd(args: Args, argv: list[str] | None) -> int:
    """An OBD file: time split, encoding fitted on the training rows, train, score this file's test split and every other file."""
    t0 = time.perf_counter()
    policy, campaign = args.data.split(":", 1)[1].split("/")
    first = load_obd(policy, campaign)
    parts = split_sessions_by_time(first.frame, (0.8, 0.1, 0.1))
    masks = [first.frame["session"].isin(ids).to_numpy() for ids in parts]
    data = load_obd(policy, campaign, fit_rows=masks[0])  # the categories of the training rows only
    train, val, test = (data.steps(m) for m in masks)
    cfg = BehaviorTrainConfig(hidden=args.hidden, max_epochs=args.max_epochs, patience=args.patience, seed=args.seed,
                              threads=args.threads, max_seconds=args.max_seconds, log_dir=args.log_dir or None)
    net, history = fit(args, argv, cfg, train, val)
    if net is None:
        return history
    others = {}
    for p in OBD_POLICIES:
        for c in OBD_CAMPAIGNS:
            if (p, c) != (policy, campaign):
                other = load_obd(p, c, encoding=data.encoding)
                others[f"{p}/{c}"] = dict(click_scores(net, other.steps()), unseen=other.unseen)
    card = {
        "hidden": args.hidden, "source": args.data,
        "feature_schema": {"version": OBD_FEATURE_VERSION, "user": data.user_names, "item": data.item_names,
                           "channels": list(CHANNELS)},
        "obd_encoding": data.encoding.to_dict(),
        "training_data": {"description": f"Open Bandit Dataset sample {policy}/{campaign} (obp 0.4.1)",
                          "split": "time-ordered: 80% train (encoding fitted here), 10% validation, 10% test",
                          "impressions": {k: int(m.sum()) for k, m in zip(("train", "val", "test"), masks)}},
        "train": {"seed": args.seed, "epochs": len(history), "best_val_loss": min(h["val_loss"] for h in history),
                  "seconds": round(time.perf_counter() - t0, 1), "command": f"python scripts/train_behavior.py --data {args.data}"},
        "test_metrics": click_scores(net, test), "other_files": others,
        "note": "a click model of OBD's features: it cannot drive the simulator (its features are not the env's)",
    }
    card = save_weights(net, args.out, card)
    print(json.dumps({"test_metrics": card["test_metrics"], "other_files": others}, indent=1, default=float))
    print(f"wrote {args.out} (sha256 {card['sha256'][:12]}...) in {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    run(main)
