"""Why a policy must plan: myopic policies against a lookahead one in the reference world.

Scores, on ``ecomsim/Recommend-v0`` with the reference world as shoppers:

* ``click_greedy``: shows the candidate with the highest P(click) now;
* ``greedy``: the highest P(purchase) now (accounts for price against budget);
* ``lookahead``: ``P(purchase) + beta * P(click) * (2 quality - 0.4)``, which also
  values the patience a satisfying click restores (the reference world's refund
  ``k_click * (2 q - 0.4)``) and so avoids cheap click-bait that drains patience;
* ``random`` and ``popularity`` for scale.

Usage: ``python scripts/reference_experiment.py [--sessions 20000] [--seed 0] [--json]``
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from agents.baselines import BASELINES, Policy
from agents.evaluation import evaluate
from ecomsim.envs import EcomVectorEnv


class LookaheadPolicy(Policy):
    """Myopic purchase probability plus a bonus for clicks that keep the shopper engaged."""

    def __init__(self, beta: float = 0.05) -> None:
        self.beta = beta
        self.name = "lookahead"

    def act(self, obs: np.ndarray) -> np.ndarray:
        r = self.core.candidate_reaction()
        q = self.core.catalog.quality[self.core.candidates]
        return self._pick(r.purchase_total + self.beta * r.click * (2.0 * q - 0.4))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=20000)
    ap.add_argument("--num-envs", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--beta", type=float, default=0.05)
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args()
    policies = [BASELINES[n]() for n in ("random", "popularity", "click_greedy", "greedy")] + [LookaheadPolicy(args.beta)]
    results = {}
    for pol in policies:
        env = EcomVectorEnv(num_envs=args.num_envs, user_model="reference", catalog="reference")
        t0 = time.perf_counter()
        res = evaluate(pol, env, args.sessions, seed=args.seed)
        results[pol.name] = dict(res.to_dict(), seconds=round(time.perf_counter() - t0, 2))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"reference world, Recommend-v0, {args.sessions} sessions per policy, seed {args.seed}")
    print(f"{'policy':14s} {'conversion_rate [95% CI]':28s} {'ctr':>7s} {'rev/session':>12s} {'length':>7s}")
    for name, r in results.items():
        m = r["metrics"]
        cr = m["conversion_rate"]
        print(f"{name:14s} {cr['value']:.4f} [{cr['low']:.4f}, {cr['high']:.4f}]     "
              f"{m['ctr']['value']:7.4f} {m['revenue_per_session']['value']:12.2f} {m['session_length']['value']:7.2f}")


if __name__ == "__main__":
    main()
