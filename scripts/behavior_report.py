"""Fidelity report of the shipped DNN behaviour model (issue: DNN shoppers).

    python scripts/behavior_report.py            # table
    python scripts/behavior_report.py --json     # table, then one JSON object on the last line

1. Held-out reference-world logs (fresh sessions, a seed the training never used):
   click and purchase AUC next to the Bayes-optimal AUC from the reference world's
   own probabilities on the same rows; expected calibration error per head.
2. Policy agreement (``agents.agreement``): each baseline runs ``--sessions`` sessions in
   the DNN sim and in the reference world (same seeds); conversion rate and CTR, relative
   gaps, and whether the policies rank the same.
3. Open Bandit Dataset sample (when ``obp`` is installed): a behaviour net trained
   on the time-ordered train split, held-out click AUC next to logistic
   regression, and CTR per position in the data versus simulated clicks.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np

from agents.agreement import GAP_TARGET, agreement
from agents.cli import existing_file, option, parse_args, pin_threads, run
from agents.memory import check_env_memory
from ecomsim.shoppers.weights import load_net, shipped_weights_path
from ecomsim.shoppers.training import BehaviorTrainConfig, auc, heldout_metrics, predict_steps, train_behavior
from ecomsim.data.reference_logs import log_reference_world, merge_logs

REPORT_SEED = 12345  # the held-out logs' seed; training used seeds 0 and 1
TARGETS = {"click_auc_ratio": 0.97, "purchase_auc_ratio": 0.95, "click_ece": 0.01, "relative_gap": GAP_TARGET}


@dataclass
class Args:
    json: bool = False
    """print the report as JSON on the last line, after the table"""
    weights: str | None = option(None, check=existing_file)
    """weights file (default: the shipped ecomsim/assets/behavior.pt)"""
    sessions: int = option(50_000, min=1)
    """sessions per policy and world (use >= 20,000: at 2-5% conversion 50k keep the 95% CI of the gap near +-6%)"""
    num_envs: int = option(1000, min=1)
    """sessions stepped together"""
    log_sessions: int = option(20_000, min=1)
    """held-out recommend sessions logged"""
    log_slate_sessions: int = option(8_000, min=1)
    """held-out slate sessions logged"""
    skip_obd: bool = False
    """skip the Open Bandit Dataset section"""
    threads: int = option(1, min=1)
    """torch and BLAS threads"""


def heldout(weights: str | None, sessions: int, slate_sessions: int) -> dict:
    net, _ = load_net(weights or shipped_weights_path())
    logs = merge_logs([log_reference_world(sessions, seed=REPORT_SEED, slate_size=1),
                       log_reference_world(slate_sessions, seed=REPORT_SEED + 1, slate_size=5, first_session=sessions)])
    m = heldout_metrics(net, logs.steps)
    m["click_auc_target_met"] = m["click_auc_ratio"] >= TARGETS["click_auc_ratio"]
    m["purchase_auc_target_met"] = m["purchase_auc_ratio"] >= TARGETS["purchase_auc_ratio"]
    m["click_ece_target_met"] = m["click_ece"] <= TARGETS["click_ece"]
    m["sessions"] = {"recommend": sessions, "slate_5": slate_sessions, "seed": REPORT_SEED}
    return m


def obd_report(seed: int = 0, folds: int = 5) -> dict:
    """OBD: time-blocked cross-validation (each block held out once, the block before it validates).

    The sample holds ~10k impressions and ~40 clicks, so a single forward split tests on a
    handful of clicks; pooling the held-out predictions of all blocks scores every click.
    """
    from sklearn.linear_model import LogisticRegression

    from ecomsim.data.obd import load_obd

    try:
        data = load_obd("random", "all")
    except ModuleNotFoundError as exc:
        return {"skipped": str(exc)}
    n = len(data.click)
    order = np.argsort(data.frame["timestamp"].to_numpy(), kind="stable")
    block = np.empty(n, dtype=np.int64)
    block[order] = np.arange(n) * folds // n
    pos_oh = np.eye(int(data.position.max()) + 1)[data.position]
    x = np.concatenate([data.user, data.items, pos_oh], axis=1)
    p_dnn, p_lr = np.zeros(n), np.zeros(n)
    cfg = BehaviorTrainConfig(hidden=16, lr=3e-3, weight_decay=1e-3, batch_steps=256, max_epochs=40, patience=5, seed=seed)
    for b in range(folds):
        test = block == b
        val = block == (b - 1 if b > 0 else b + 1)
        train = ~test & ~val
        net, _ = train_behavior(data.steps(train), data.steps(val), cfg)
        for pos, s in data.steps(test).items():
            rows = np.flatnonzero(test & (data.position == pos))
            p_dnn[rows] = predict_steps(net, s)["click"][:, 0]
        lr = LogisticRegression(C=0.1, max_iter=2000).fit(x[~test], data.click[~test])
        p_lr[test] = lr.predict_proba(x[test])[:, 1]
    last = block == folds - 1
    rng = np.random.default_rng(seed)
    sim = rng.random(n) < p_dnn  # clicks sampled from the held-out predictions
    ctr = {str(pos): {"data": float(data.click[data.position == pos].mean()), "sim": float(sim[data.position == pos].mean()),
                      "model_mean": float(p_dnn[data.position == pos].mean()), "impressions": int((data.position == pos).sum())}
           for pos in np.unique(data.position)}
    return {
        "impressions": n,
        "clicks": int(data.click.sum()),
        "click_auc_dnn": auc(data.click, p_dnn),
        "click_auc_logistic_regression": auc(data.click, p_lr),
        "last_block_click_auc_dnn": auc(data.click[last], p_dnn[last]),
        "last_block_click_auc_logistic_regression": auc(data.click[last], p_lr[last]),
        "last_block_clicks": int(data.click[last].sum()),
        "ctr_per_position": ctr,
        "protocol": f"{folds} contiguous time blocks, each held out once (the previous block validates); pooled AUC",
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    check_env_memory("--num-envs", min(args.num_envs, args.sessions), {"user_model": "reference", "catalog": "reference"})
    t0 = time.perf_counter()
    report = {"heldout": heldout(args.weights, args.log_sessions, args.log_slate_sessions)}
    print_heldout(report["heldout"])
    report["agreement"] = agreement(args.weights, args.sessions, args.num_envs)
    print_agreement(report["agreement"])
    if not args.skip_obd:
        report["obd"] = obd_report()
        print_obd(report["obd"])
    report["seconds"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(report, default=float))
    return 0


def print_heldout(h: dict) -> None:
    print(f"held-out: click AUC {h['click_auc']:.4f} vs Bayes {h['click_auc_bayes']:.4f} (ratio {h['click_auc_ratio']:.4f}, "
          f"target >= 0.97); purchase AUC {h['purchase_auc']:.4f} vs Bayes {h['purchase_auc_bayes']:.4f} "
          f"(ratio {h['purchase_auc_ratio']:.4f}, target >= 0.95)")
    print(f"ECE: click {h['click_ece']:.4f} (target <= 0.01), cart {h['cart_ece']:.4f}, purchase {h['purchase_ece']:.4f}, "
          f"leave {h['leave_ece']:.4f}", flush=True)


def print_agreement(a: dict) -> None:
    print(f"{'policy':13s} {'conv ref':>9s} {'conv dnn':>9s} {'gap':>7s} {'ctr ref':>8s} {'ctr dnn':>8s} {'gap':>7s}")
    for name, row in a["policies"].items():
        print(f"{name:13s} {row['reference']['conversion_rate']['value']:9.4f} {row['dnn']['conversion_rate']['value']:9.4f} "
              f"{row['conversion_rate_relative_gap']:+7.1%} {row['reference']['ctr']['value']:8.4f} "
              f"{row['dnn']['ctr']['value']:8.4f} {row['ctr_relative_gap']:+7.1%}   conv gap 95% CI "
              f"[{row['conversion_rate_relative_gap_ci95'][0]:+.1%}, {row['conversion_rate_relative_gap_ci95'][1]:+.1%}]")
    for key in ("ranking_conversion_rate_required", "ranking_ctr_required", "ranking_conversion_rate_all", "ranking_ctr_all"):
        r = a[key]
        print(f"{key}: same={r['same']} reference={r['reference']} dnn={r['dnn']}", flush=True)


def print_obd(o: dict) -> None:
    if "skipped" in o:
        print(f"OBD: skipped ({o['skipped']})")
        return
    print(f"OBD: held-out click AUC {o['click_auc_dnn']:.4f} (DNN) vs {o['click_auc_logistic_regression']:.4f} "
          f"(logistic regression), pooled over {o['clicks']} held-out clicks; last time block "
          f"{o['last_block_click_auc_dnn']:.4f} vs {o['last_block_click_auc_logistic_regression']:.4f}")
    for pos, c in o["ctr_per_position"].items():
        print(f"  position {pos}: CTR data {c['data']:.4f} sim {c['sim']:.4f} (model mean {c['model_mean']:.4f})")


if __name__ == "__main__":
    run(main)
