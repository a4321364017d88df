"""Calibration of the reference world against CALIBRATION.md's real figures.

Runs the popularity policy (an ordinary shop's ranking) on ``ecomsim/Recommend-v0``
with the reference world, overall and per channel, and prints the funnel next to
the published ranges: session conversion 1.9-3%, add-to-cart 6-8% of sessions,
cart abandonment ~70%, session depth ~14 (KuaiSim), web > app > social conversion
and order value.

Usage: ``python scripts/reference_report.py [--sessions 20000] [--seed 0] [--json]``
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from agents.baselines import PopularityPolicy
from agents.cli import option, parse_args, pin_threads, run
from agents.evaluation import evaluate
from ecomsim.config import CHANNELS
from ecomsim.envs import EcomVectorEnv

TARGETS = {
    "conversion_rate": "1.9-3% (industry average; >3.2% top quartile)",
    "add_to_cart_rate": "6-8% of sessions",
    "cart_abandonment": "~70% (Baymard)",
    "session_length": "~14 steps (KuaiSim on KuaiRand)",
    "channels": "conversion web 2.57% > app 1.80% > social 0.74%; AOV web $127 > app $93 > social $82",
}


@dataclass
class Args:
    sessions: int = option(20_000, min=1)
    """sessions overall and per channel"""
    seed: int = 0
    """evaluation seed (sub-env i gets seed + i)"""
    json: bool = False
    """print JSON instead of a table"""
    threads: int = option(1, min=1)
    """torch and BLAS threads"""


def funnel(channel: str | None, sessions: int, seed: int) -> dict:
    """The popularity policy's figures in the reference world (one channel, or the mix for None)."""
    env = EcomVectorEnv(num_envs=500, user_model="reference", catalog="reference", channel=channel)
    res = evaluate(PopularityPolicy(), env, sessions, seed=seed)
    m = res.metrics
    out = {k: v.to_dict() for k, v in m.items()}
    out["add_to_cart_rate"] = res.funnel["add_to_cart_rate"]
    out["cart_abandonment"] = 1.0 - res.funnel["cart_to_purchase"]
    # average order value: revenue per purchasing session / purchases per purchasing session
    conv = m["conversion_rate"].value
    out["average_order_value"] = m["revenue_per_session"].value / conv if conv > 0 else float("nan")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    report = {"policy": "popularity", "sessions": args.sessions, "targets": TARGETS,
              "overall": funnel(None, args.sessions, args.seed),
              "channels": {ch: funnel(ch, args.sessions, args.seed) for ch in CHANNELS}}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    o = report["overall"]
    print(f"reference world, popularity policy, {args.sessions} sessions (seed {args.seed})")
    print(f"conversion_rate   {o['conversion_rate']['value']:.4f} [{o['conversion_rate']['low']:.4f}, {o['conversion_rate']['high']:.4f}]   target {TARGETS['conversion_rate']}")
    print(f"add_to_cart_rate  {o['add_to_cart_rate']:.4f}   target {TARGETS['add_to_cart_rate']}")
    print(f"cart_abandonment  {o['cart_abandonment']:.4f}   target {TARGETS['cart_abandonment']}")
    print(f"session_length    {o['session_length']['value']:.2f}   target {TARGETS['session_length']}")
    print(f"ctr               {o['ctr']['value']:.4f}")
    print("channel  conversion_rate [95% CI]        AOV")
    for ch, r in report["channels"].items():
        cr = r["conversion_rate"]
        print(f"{ch:8s} {cr['value']:.4f} [{cr['low']:.4f}, {cr['high']:.4f}]   {r['average_order_value']:7.2f}")
    print(f"target: {TARGETS['channels']}")
    return 0


if __name__ == "__main__":
    run(main)
