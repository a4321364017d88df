"""Score policies by CTR, conversion, revenue per session and session length (95% CIs).

Each policy is scored in the env's own simulator and in the reference world
(``user_model="reference"``), side by side: the sim-to-real gap.

A trained agent is ``ppo:PATH``, ``dqn:PATH`` or ``maskable_ppo:PATH`` with PATH its ``model.pt`` (the
card ``model.json`` beside it says the env it was trained on; another env id or action
space is refused). A Stable-Baselines3 zip loads only with ``--trust-pickle``: SB3
unpickles its ``data`` entry, so a crafted file runs code. An offline-trained policy
(``scripts/train_offline.py``) is ``offline:PATH`` with PATH its card (``card.json``).

    python scripts/evaluate.py --policy greedy --sessions 20000
    python scripts/evaluate.py --policy ppo:runs/ppo/model.pt --policy popularity --json
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from agents.cli import option, parse_args, pin_threads, run
from agents.evaluation import EvalResult, score, spaces_of
from agents.memory import check_env_memory
from agents.registry import AgentFactory, policy_factory
from agents.report import score_table
from ecomsim.registration import env_kwargs


@dataclass
class Args:
    policy: list[str]
    """random, popularity, click_greedy, greedy, bandit, ppo:PATH, dqn:PATH, maskable_ppo:PATH or offline:PATH"""
    sessions: int = option(20_000, min=1)
    """sessions per policy and world"""
    seed: int = 0
    """evaluation seed (sub-env i gets seed + i)"""
    env_id: str = "ecomsim/Recommend-v0"
    """a registered ecomsim id"""
    catalog: str | None = None
    """shipped catalog name or catalog file (default: the env's)"""
    channel: Literal["app", "web", "social"] | None = None
    """fix the shoppers' channel (default: the population's mix)"""
    user_model: str | None = None
    """the simulator's shopper model (default: the env's)"""
    num_envs: int = option(256, min=1)
    """sessions stepped together"""
    device: str = "cpu"
    """device for loading SB3 models: auto, cpu, cuda or cuda:N"""
    sim_only: bool = False
    """skip the reference-world scoring"""
    json: bool = False
    """print JSON instead of a table"""
    trust_pickle: bool = False
    """also load Stable-Baselines3 zips (ppo:FILE.zip): SB3 unpickles them, which runs any code a crafted file holds"""
    threads: int = option(1, min=1)
    """torch and BLAS threads"""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    kwargs = env_kwargs(args.env_id, catalog=args.catalog, channel=args.channel, user_model=args.user_model)
    worlds = ("sim",) if args.sim_only else ("sim", "reference")
    check_env_memory("--num-envs", min(args.num_envs, args.sessions), kwargs)
    # every policy loads, and every agent is checked against the env, before any scoring
    factories = {spec: policy_factory(spec, device=args.device, trust_pickle=args.trust_pickle, env_id=args.env_id)
                 for spec in args.policy}
    agents = [f.agent for f in factories.values() if isinstance(f, AgentFactory)]
    if agents:
        action_space, observation_space = spaces_of(kwargs)
        for agent in agents:
            agent.check_env(args.env_id, action_space, observation_space)
    rows: dict[str, dict[str, EvalResult]] = {}
    for spec, make in factories.items():
        rows[spec] = score(make, kwargs, args.sessions, seed=args.seed, num_envs=args.num_envs, worlds=worlds)
    if args.json:
        out = {"env_id": args.env_id, "env_options": kwargs, "sessions": args.sessions, "seed": args.seed,
               "results": {spec: {w: r.to_dict() for w, r in by.items()} for spec, by in rows.items()}}
        print(json.dumps(out, indent=1))
    else:
        print(f"{args.env_id}  {kwargs}  {args.sessions} sessions per policy and world, seed {args.seed}, 95% CIs")
        print(score_table(rows))
    return 0


if __name__ == "__main__":
    run(main)
