"""Score an offline-trained policy online, next to its dataset's logging policy and the baselines.

Loads the card and weights written by ``scripts/train_offline.py`` (no d3rlpy needed),
rebuilds the dataset's logging policy from the card, and scores every policy with
``agents.evaluation.score``: the env's simulator and the reference world, conversion
rate with 95% Wilson intervals (and CTR, revenue per session, session length).

    python scripts/score_offline.py --card runs/cql/card.json --sessions 20000
    python scripts/score_offline.py --card runs/cql/card.json --baselines greedy --sim-only --json
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from agents.baselines import BASELINES
from agents.cli import one_of, option, parse_args, pin_threads, run
from agents.evaluation import score
from agents.offline import load_offline_policy
from agents.propensity import SoftmaxPolicy
from ecomsim.metrics import METRIC_NAMES


@dataclass
class Args:
    card: str
    """card.json of the offline policy (or its folder)"""
    sessions: int = option(20_000, min=1)
    """sessions per policy and world"""
    seed: int = 1_000_000
    """evaluation seed, away from the logging seeds"""
    baselines: tuple[str, ...] = option(tuple(BASELINES), check=one_of(BASELINES))
    """baselines scored alongside, comma-separated ('' for none)"""
    num_envs: int = option(256, min=1)
    """sessions stepped together"""
    sim_only: bool = False
    """skip the reference-world scoring"""
    json: bool = False
    """print JSON instead of a table"""
    threads: int = option(1, min=1)
    """torch and BLAS threads"""


def logging_policy_factory(card: dict):
    """The dataset's logging policy, rebuilt from the card's dataset metadata (``None`` if it is not a softmax policy)."""
    desc = card.get("dataset", {}).get("ecomsim", {}).get("logging_policy", {})
    if desc.get("kind") != "softmax":
        return None
    return lambda: SoftmaxPolicy(desc["scores"], desc["temperature"], desc["epsilon"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    policy = load_offline_policy(args.card, name="cql")
    card = policy.card
    options = dict(card["env_options"])
    makers = {"cql": lambda: policy}
    logging = logging_policy_factory(card)
    if logging is not None:
        makers["logging"] = logging
    for name in args.baselines:
        makers[name] = BASELINES[name]
    worlds = ("sim",) if args.sim_only else ("sim", "reference")
    rows = {name: score(make, options, args.sessions, seed=args.seed, num_envs=args.num_envs, worlds=worlds)
            for name, make in makers.items()}
    if args.json:
        print(json.dumps({"card": str(args.card), "env_id": card["env_id"], "env_options": options, "sessions": args.sessions,
                          "seed": args.seed, "results": {n: {w: r.to_dict() for w, r in by.items()} for n, by in rows.items()}},
                         indent=1))
        return 0
    print(f"{card['env_id']} {options}, {args.sessions} sessions per policy and world, seed {args.seed}, 95% CIs")
    base = rows.get("logging")
    head = f"| policy | world | {' | '.join(METRIC_NAMES)} | conversion x logging |"
    print(head)
    print("|" + "---|" * (len(METRIC_NAMES) + 3))
    for name, by in rows.items():
        for world, res in by.items():
            ratio = res.metrics["conversion_rate"].value / base[world].metrics["conversion_rate"].value if base else float("nan")
            cells = " | ".join(str(res.metrics[m]) for m in METRIC_NAMES)
            print(f"| {name} | {world} | {cells} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    run(main)
