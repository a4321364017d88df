"""Privacy report: what private training costs the behaviour model, and what the shipped models give away.

    python scripts/privacy_report.py --json     # the full report (27 min on 2 shared cores)
    python scripts/privacy_report.py --sessions 4000 --slate-sessions 1000 --dp-epochs 1 --agreement-sessions 2000 --skip-shipped-mia

(the second: a quick look, ~3 min).

1. **DP utility table.** Reference-world logs (``--sessions`` recommend and
   ``--slate-sessions`` slate sessions, seeds ``--seed`` and ``--seed + 1``), split by
   time 80/10/10. The behaviour model is trained without privacy
   (``ecomsim.shoppers.training.train_behavior``, early stopping) and with DP-SGD at each
   ``--epsilons`` (``ecomsim.shoppers.private.train_private``: session-level unit, the
   stated delta, normalisation inside epsilon, calibration on the validation split
   outside it). Each model: held-out click and purchase AUC next to the Bayes-optimal
   AUC (the reference world's own probabilities on the test split), and policy
   agreement: the four baselines' conversion in the model's simulator against the
   reference world, measured as ``scripts/behavior_report.py`` does (``agents.agreement``).
2. **Membership inference** (``ecomsim.shoppers.membership``): the loss-threshold attack's
   AUC, training vs held-out sessions, for each model above and for the shipped model
   (whose training logs are regenerated exactly from its card's recipe).
3. **The GAN catalog generator's** distance to closest record (``generators.metrics.privacy``),
   as ``scripts/catalog_report.py`` computes it.

Weights of the trained models (with their cards: epsilon, delta, what is covered) go to ``--out-dir``.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from agents.agreement import GAP_TARGET, REQUIRED, agreement
from agents.cli import option, output_dir, parse_args, pin_threads, run
from ecomsim.data.reference_logs import log_reference_world, merge_logs
from ecomsim.shoppers.behavior import reference_feature_schema
from ecomsim.shoppers.weights import load_net, save_weights, shipped_weights_path
from ecomsim.shoppers.membership import membership_inference
from ecomsim.shoppers.training import BehaviorTrainConfig, heldout_metrics, train_behavior

SHIPPED_RECIPE = ((100_000, 0, 1), (40_000, 1, 5))  # (sessions, seed, slate size) of scripts/train_behavior.py


def positive(value: float) -> None:
    """A ``check``: epsilon > 0."""
    if not value > 0:
        raise ValueError(f"expected a number > 0, got {value!r}")


@dataclass
class Args:
    json: bool = False
    """print the report as JSON on the last line"""
    sessions: int = option(30_000, min=1)
    """recommend-mode sessions logged"""
    slate_sessions: int = option(7_500, min=0)
    """slate sessions logged (5 items per step)"""
    seed: int = 100
    """log seed (slates: seed + 1); the shipped model used 0 and 1"""
    epsilons: tuple[float, ...] = option((1.0, 3.0, 8.0), check=positive)
    """target epsilons of the private models, comma-separated"""
    dp_epochs: int = option(4, min=1)
    """DP-SGD passes over the sessions"""
    batch_sessions: int = option(512, min=1)
    """expected sessions per DP-SGD batch"""
    max_grad_norm: float = option(1.0, check=positive)
    """per-session clipping norm"""
    lr: float = option(1e-2, check=positive)
    """Adam learning rate of DP-SGD"""
    max_seconds: float = option(600.0, min=0)
    """time cap of the non-private training"""
    agreement_sessions: int = option(20_000, min=0)
    """sessions per policy and world of the policy agreement (0: skip it)"""
    num_envs: int = option(1000, min=1)
    """sessions stepped together in the agreement runs"""
    mia_sessions: int = option(5000, min=1)
    """sessions per group of the membership attack"""
    skip_shipped_mia: bool = False
    """skip regenerating the shipped model's logs for its membership attack"""
    skip_gan: bool = False
    """skip the GAN catalog generator's distance to closest record"""
    out_dir: str = option("runs/privacy", check=output_dir)
    """where the trained weights and cards go"""
    threads: int = option(1, min=1)
    """torch and BLAS threads"""

    def __post_init__(self) -> None:
        if not self.epsilons:
            raise ValueError("argument --epsilons: expected at least one epsilon, got ''")


def card_base(hidden: int, logs, test_metrics: dict) -> dict:
    return {"hidden": hidden, "test_metrics": test_metrics, "feature_schema": reference_feature_schema(),
            "training_data": {"description": logs.description, "command": "python scripts/privacy_report.py",
                              "split": "time-ordered by session start: 80% train, 10% validation, 10% test"}}


def agreement_summary(weights: str, sessions: int, num_envs: int) -> dict:
    r = agreement(weights, sessions, num_envs)
    gaps = {n: row["conversion_rate_relative_gap"] for n, row in r["policies"].items()}
    return {"conversion": {n: {"reference": row["reference"]["conversion_rate"]["value"],
                               "model": row["dnn"]["conversion_rate"]["value"], "relative_gap": gaps[n],
                               "relative_gap_ci95": row["conversion_rate_relative_gap_ci95"]}
                           for n, row in r["policies"].items()},
            "max_abs_conversion_gap": max(abs(g) for g in gaps.values()),
            "policies_within_10pct": sum(abs(g) <= GAP_TARGET for g in gaps.values()),
            "ranking_same_all": r["ranking_conversion_rate_all"]["same"],
            "ranking_same_required": r["ranking_conversion_rate_required"]["same"],
            "ranking_reference": r["ranking_conversion_rate_all"]["reference"],
            "ranking_model": r["ranking_conversion_rate_all"]["dnn"], "sessions_per_policy": sessions}


def shipped_mia(max_sessions: int) -> dict:
    """The shipped model against its own training logs, regenerated from the recipe in its card."""
    net, card = load_net(shipped_weights_path())
    parts, first = [], 0
    for sessions, seed, k in SHIPPED_RECIPE:
        parts.append(log_reference_world(sessions, seed=seed, slate_size=k, first_session=first))
        first += sessions
    train, _, test = merge_logs(parts).split((0.8, 0.1, 0.1))
    if len(train.frame) != card["training_data"]["impressions"]["train"]:
        raise RuntimeError(f"regenerated training logs hold {len(train.frame)} impressions, the shipped card says "
                           f"{card['training_data']['impressions']['train']}: the recipe no longer matches")
    return membership_inference(net, train.steps, test.steps, max_sessions=max_sessions)


def gan_privacy() -> dict:
    from generators.data import split_table, training_table
    from generators.metrics import TARGETS as GAN_TARGETS
    from generators.metrics import privacy
    from generators.sampler import CatalogGAN

    gan = CatalogGAN.load(None)
    card = gan.card
    table, names = training_table(card["data"])
    train, holdout = split_table(table, card["split"]["holdout"], card["split"]["seed"])
    synthetic = gan.sample_table(card["report_sample"]["rows"], seed=card["report_sample"]["seed"])
    out = privacy(train, holdout, synthetic, names)
    out["dcr_ratio_target_min"] = GAN_TARGETS["dcr_ratio_min"]
    out["rows"] = {"train": len(train), "holdout": len(holdout), "synthetic": len(synthetic)}
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    t0 = time.perf_counter()
    out_dir = Path(args.out_dir)
    parts = [log_reference_world(args.sessions, seed=args.seed, slate_size=1)]
    if args.slate_sessions:
        parts.append(log_reference_world(args.slate_sessions, seed=args.seed + 1, slate_size=5,
                                         first_session=args.sessions))
    logs = merge_logs(parts)
    train, val, test = logs.split((0.8, 0.1, 0.1))
    report: dict = {"setup": {"sessions": args.sessions, "slate_sessions": args.slate_sessions, "seed": args.seed,
                              "impressions": {"train": len(train.frame), "val": len(val.frame), "test": len(test.frame)},
                              "dp_epochs": args.dp_epochs, "batch_sessions": args.batch_sessions,
                              "max_grad_norm": args.max_grad_norm, "threads": args.threads}, "models": {}}
    print(f"logged {len(logs.frame):,} impressions ({time.perf_counter() - t0:.0f}s)", flush=True)

    runs = [("none", None)] + [(f"eps_{e:g}", e) for e in args.epsilons]
    for name, eps in runs:
        t1 = time.perf_counter()
        if eps is None:
            net, history = train_behavior(train.steps, val.steps, BehaviorTrainConfig(max_seconds=args.max_seconds, seed=0))
            extra = {"train": {"epochs": len(history), "early_stopping": "validation loss"}}
        else:
            from ecomsim.shoppers.private import PrivateTrainConfig, train_private

            cfg = PrivateTrainConfig(target_epsilon=eps, epochs=args.dp_epochs, batch_sessions=args.batch_sessions,
                                     max_grad_norm=args.max_grad_norm, lr=args.lr, threads=args.threads)
            net, privacy = train_private(train.steps, val.steps, cfg)
            extra = {"privacy": privacy}
        seconds = time.perf_counter() - t1
        m = heldout_metrics(net, test.steps)
        path = out_dir / f"behavior_{name}.pt"
        save_weights(net, path, {**card_base(64, logs, m), **extra})
        row = {k: m[k] for k in ("click_auc", "click_auc_bayes", "click_auc_ratio", "purchase_auc",
                                 "purchase_auc_bayes", "purchase_auc_ratio", "click_ece")}
        row.update(train_seconds=round(seconds, 1), weights=str(path))
        if eps is not None:
            row.update({k: extra["privacy"][k] for k in ("epsilon", "delta", "noise_multiplier", "steps", "sample_rate")})
        if args.agreement_sessions:
            row["agreement"] = agreement_summary(str(path), args.agreement_sessions, args.num_envs)
        row["membership"] = membership_inference(net, train.steps, test.steps, max_sessions=args.mia_sessions)
        report["models"][name] = row
        print(format_row(name, row), flush=True)
    if not args.skip_shipped_mia:
        report["shipped_membership"] = shipped_mia(args.mia_sessions)
        s = report["shipped_membership"]
        print(f"shipped model: membership AUC {s['auc']:.3f} [{s['auc_ci95'][0]:.3f}, {s['auc_ci95'][1]:.3f}], "
              f"advantage {s['advantage']:.3f}", flush=True)
    if not args.skip_gan:
        report["gan"] = gan_privacy()
        g = report["gan"]
        print(f"GAN catalog: DCR ratio {g['dcr_ratio']:.3f} (synthetic vs held-out median distance to the closest "
              f"training row; target >= {g['dcr_ratio_target_min']}), exact copies {g['exact_copies']}")
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["notes"] = {
        "privacy_unit": "one session (user-level in the reference logs: one session per shopper)",
        "not_covered_by_epsilon": "Platt calibration on the validation split (treated as public); hyper-parameters",
        "agreement": f"conversion of {list(REQUIRED)} and click_greedy in the model's simulator vs the reference world",
    }
    if args.json:
        print(json.dumps(report, default=float))
    return 0


def format_row(name: str, row: dict) -> str:
    eps = f"eps {row['epsilon']:.2f} delta {row['delta']:.1e}" if "epsilon" in row else "non-private"
    a = row.get("agreement")
    agree = (f"max |conv gap| {a['max_abs_conversion_gap']:.1%}, {a['policies_within_10pct']}/4 within 10%, "
             f"same ranking {a['ranking_same_all']} (required {a['ranking_same_required']})") if a else "agreement skipped"
    mia = row["membership"]
    return (f"{name:8s} {eps:28s} click AUC {row['click_auc']:.4f} ({row['click_auc_ratio']:.3f} of Bayes), purchase AUC "
            f"{row['purchase_auc']:.4f} ({row['purchase_auc_ratio']:.3f}); {agree}; membership AUC {mia['auc']:.3f} "
            f"[{mia['auc_ci95'][0]:.3f}, {mia['auc_ci95'][1]:.3f}] ({row['train_seconds']:.0f}s training)")


if __name__ == "__main__":
    run(main)
