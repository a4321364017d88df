"""The figures behind the shoppers' explanations (issue: trust), from the shipped behaviour model.

    python scripts/explain_checks.py --json

1. **Completeness**: Integrated-Gradients attributions (``ecomsim.explain``) sum to
   ``f(x) - f(baseline)``: the largest gap per head over ``--impressions`` reference-world
   impressions (half recommend steps, half in 5-item slates), target 1e-3.
2. **Price sign**: for impressions of items over the shopper's budget (price > budget),
   the share whose price-vs-budget credit for purchase is negative, target >= 95%.
3. **Global importances**: mean |attribution| per feature group and head over
   ``--importance-steps`` logged steps, recommend and slate pooled (the table behind the report's picture).

All logs come from seeds the shipped model never trained on (it used 0 and 1).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np

from agents.cli import existing_file, option, parse_args, pin_threads, run
from ecomsim.data.reference_logs import log_reference_world
from ecomsim.explain import EXPLAINED_HEADS, explain_features, global_importance
from ecomsim.shoppers.weights import load_net, shipped_weights_path

SEED = 4242


@dataclass
class Args:
    json: bool = False
    """print the figures as JSON on the last line"""
    weights: str | None = option(None, check=existing_file)
    """weights file (default: the shipped model)"""
    impressions: int = option(1000, min=10)
    """impressions of the completeness check"""
    over_budget: int = option(2000, min=10)
    """over-budget impressions of the sign check"""
    importance_steps: int = option(2000, min=1)
    """logged steps of the global importances"""
    threads: int = option(1, min=1)
    """torch and BLAS threads"""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    t0 = time.perf_counter()
    net, card = load_net(args.weights or shipped_weights_path())
    names = {"user_names": card["feature_schema"]["user"], "item_names": card["feature_schema"]["item"]}
    rec = log_reference_world(max(2000, args.over_budget * 2), seed=SEED).steps[1]
    n_slate = args.impressions // 10
    slate = log_reference_world(max(100, n_slate), seed=SEED + 1, slate_size=5).steps[5]
    gaps: dict[str, float] = {h: 0.0 for h in EXPLAINED_HEADS}
    for s, n in ((rec, args.impressions - 5 * n_slate), (slate, n_slate)):
        if len(s) < n:
            raise ValueError(f"only {len(s)} logged steps for {n} requested; raise the log size")
        ex = explain_features(net, s.user[:n], s.items[:n], s.positions, s.channel[:n], heads=EXPLAINED_HEADS,
                              level=s.level[:n], **names)
        for h, e in ex.items():
            gaps[h] = max(gaps[h], float(np.abs(e.completeness_gap).max()))
    out = {"completeness": {"impressions": args.impressions, "max_gap_per_head": gaps, "max_gap": max(gaps.values()),
                            "target": 1e-3, "met": max(gaps.values()) <= 1e-3}}
    print(f"completeness: largest |sum(attributions) - (f(x) - f(baseline))| over {args.impressions} impressions "
          f"{out['completeness']['max_gap']:.2e} (target 1e-3); per head {json.dumps({k: f'{v:.1e}' for k, v in gaps.items()})}",
          flush=True)

    j = names["item_names"].index("log_price_over_budget")
    over = np.flatnonzero(rec.items[:, 0, j] > 0)[: args.over_budget]  # log(price / budget) > 0
    heads = ("click", "cart", "purchase", "purchase_total")
    ex = explain_features(net, rec.user[over], rec.items[over], rec.positions, rec.channel[over], heads=heads,
                          tolerance=1e-3, **names)
    share = {}
    for h in heads:
        groups, attr = ex[h].grouped()
        share[h] = float((attr[:, groups.index("price_vs_budget")] < 0).mean())
    out["price_sign"] = {"over_budget_impressions": int(len(over)), "negative_share": share, "target": 0.95,
                         "met": share["purchase"] >= 0.95}
    print(f"price vs budget over budget ({len(over)} impressions): negative credit for purchase in "
          f"{share['purchase']:.1%} (target >= 95%), purchase_total {share['purchase_total']:.1%}, cart "
          f"{share['cart']:.1%}, click {share['click']:.1%} (the reference world's click rewards premium prices)",
          flush=True)

    table = global_importance(net, {1: rec, 5: slate}, sample=args.importance_steps, seed=0, **names)
    out["global_importance"] = {h: table[h].round(5).to_dict() for h in table.columns}
    print(table.round(4).to_string())
    out["seconds"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    run(main)
