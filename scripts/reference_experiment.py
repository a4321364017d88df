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

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np

from agents.baselines import BASELINES, Policy
from agents.cli import option, parse_args, pin_threads, run
from agents.evaluation import evaluate
from agents.memory import check_env_memory
from agents.report import score_table
from ecomsim.envs import EcomVectorEnv


@dataclass
class Args:
    sessions: int = option(20_000, min=1)
    """sessions per policy"""
    num_envs: int = option(500, min=1)
    """sessions stepped together"""
    seed: int = 0
    """evaluation seed (sub-env i gets seed + i)"""
    beta: float = 0.05
    """lookahead's weight on the patience a satisfying click restores"""
    json: bool = False
    """print JSON instead of a table"""
    threads: int = option(1, min=1)
    """torch and BLAS threads"""


class LookaheadPolicy(Policy):
    """Myopic purchase probability plus a bonus for clicks that keep the shopper engaged."""

    def __init__(self, beta: float = 0.05) -> None:
        self.beta = beta
        self.name = "lookahead"

    def act(self, obs: np.ndarray) -> np.ndarray:
        r = self.core.candidate_reaction()
        q = self.core.catalog.quality[self.core.candidates]
        return self._pick(r.purchase_total + self.beta * r.click * (2.0 * q - 0.4))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    check_env_memory("--num-envs", min(args.num_envs, args.sessions), {"user_model": "reference", "catalog": "reference"})
    policies = [BASELINES[n]() for n in ("random", "popularity", "click_greedy", "greedy")] + [LookaheadPolicy(args.beta)]
    results, seconds = {}, {}
    for pol in policies:
        env = EcomVectorEnv(num_envs=args.num_envs, user_model="reference", catalog="reference")
        t0 = time.perf_counter()
        results[pol.name] = {"reference": evaluate(pol, env, args.sessions, seed=args.seed)}
        seconds[pol.name] = round(time.perf_counter() - t0, 2)
    if args.json:
        print(json.dumps({name: dict(by["reference"].to_dict(), seconds=seconds[name]) for name, by in results.items()},
                         indent=2))
        return 0
    print(f"reference world, Recommend-v0, {args.sessions} sessions per policy, seed {args.seed}, 95% CIs")
    print(score_table(results, reference="popularity"))
    return 0


if __name__ == "__main__":
    run(main)
