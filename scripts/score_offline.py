"""Score an offline-trained policy online, next to its dataset's logging policy and the baselines.

Loads the card and weights written by ``scripts/train_offline.py`` (no d3rlpy needed),
rebuilds the dataset's logging policy from the card, and scores every policy with
``agents.evaluation.score``: the env's simulator and the reference world, conversion
rate with 95% Wilson intervals (and CTR, revenue per session, session length).

    python scripts/score_offline.py --card runs/cql/card.json --sessions 20000
    python scripts/score_offline.py --card runs/cql/card.json --baselines greedy --sim-only --json
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--card", required=True, help="card.json of the offline policy (or its folder)")
    p.add_argument("--sessions", type=int, default=20_000, help="sessions per policy and world (default 20000)")
    p.add_argument("--seed", type=int, default=1_000_000, help="evaluation seed (default 1000000, away from the logging seeds)")
    p.add_argument("--baselines", default="random,popularity,click_greedy,greedy", help="comma-separated baselines ('' for none)")
    p.add_argument("--num-envs", type=int, default=256)
    p.add_argument("--sim-only", action="store_true", help="skip the reference-world scoring")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.sessions < 1:
        p.error(f"--sessions must be >= 1, got {args.sessions}")
    if args.num_envs < 1:
        p.error(f"--num-envs must be >= 1, got {args.num_envs}")
    return args


def logging_policy_factory(card: dict):
    """The dataset's logging policy, rebuilt from the card's dataset metadata (``None`` if it is not a softmax policy)."""
    from agents.propensity import SoftmaxPolicy

    desc = card.get("dataset", {}).get("ecomsim", {}).get("logging_policy", {})
    if desc.get("kind") != "softmax":
        return None
    return lambda: SoftmaxPolicy(desc["scores"], desc["temperature"], desc["epsilon"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from agents.baselines import BASELINES
    from agents.evaluation import score
    from agents.offline import load_offline_policy
    from ecomsim.errors import suggest
    from ecomsim.metrics import METRIC_NAMES

    policy = load_offline_policy(args.card, name="cql")
    card = policy.card
    options = dict(card["env_options"])
    makers = {"cql": lambda: policy}
    logging = logging_policy_factory(card)
    if logging is not None:
        makers["logging"] = logging
    for name in [b for b in args.baselines.split(",") if b]:
        if name not in BASELINES:
            raise ValueError(f"--baselines entries must be in {list(BASELINES)}, got {name!r}.{suggest(name, list(BASELINES))}")
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
    from agents.cli import run

    run(main)
