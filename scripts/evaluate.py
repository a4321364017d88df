"""Score policies by CTR, conversion, revenue per session and session length (95% CIs).

Each policy is scored in the env's own simulator and in the reference world
(``user_model="reference"``), side by side: the sim-to-real gap.

A trained agent is ``ppo:PATH``, ``dqn:PATH`` or ``maskable_ppo:PATH`` with PATH its ``model.pt`` (the
card ``model.json`` beside it says the env it was trained on; another env id or action
space is refused). A Stable-Baselines3 zip loads only with ``--trust-pickle``: SB3
unpickles its ``data`` entry, so a crafted file runs code. An offline-trained policy
(``scripts/train_offline.py``) is ``offline:PATH`` with PATH its card (``card.json``).

``ecomsim/Retention-v0`` scores customers instead (``--sessions`` of them per policy and world, seeds
``seed ...``): its baselines (``never_offer``, ``always_10``, ``churn_rule``, ``myopic``, the last two
tuned on other customers) and ``ppo:PATH`` agents, by profit per customer and retention at day
90 / 180 / 365 (``agents.retention``).

    python scripts/evaluate.py --policy greedy --sessions 20000
    python scripts/evaluate.py --policy ppo:runs/ppo/model.pt --policy popularity --json
    python scripts/evaluate.py --policy maskable_ppo:runs/m/model.pt --env-options '{"inventory": {}}' --sim-only
    python scripts/evaluate.py --env-id ecomsim/Retention-v0 --policy never_offer --policy churn_rule --sessions 2000
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from agents.cli import option, options_with_flags, parse_args, pin_threads, run
from agents.evaluation import EvalResult, score, spaces_of
from agents.memory import check_env_memory
from agents.registry import AgentFactory, policy_factory
from agents.report import score_table, store_report
from ecomsim.registration import LIFECYCLE_ENV_IDS, env_kwargs, lifecycle_env_kwargs


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
    env_options: str = "{}"
    """more env options, a JSON object of the id's config fields (e.g. '{"inventory": {}}')"""
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
    if args.env_id in LIFECYCLE_ENV_IDS:
        return retention_main(args)
    kwargs = env_kwargs(args.env_id, **options_with_flags("--env-options", args.env_options, catalog=args.catalog,
                                                          channel=args.channel, user_model=args.user_model))
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
        if kwargs.get("inventory") is not None:  # empty shelves shown and the scoring store's books
            print("\n" + store_report(rows))
    return 0


def retention_main(args: Args) -> int:
    """``Retention-v0``: the chosen baselines and ``ppo:PATH`` / ``dqn:PATH`` agents over ``--sessions`` customers
    per world."""
    from gymnasium import spaces

    from agents.retention import RETENTION_BASELINES, compare_retention_policies, retention_table
    from agents.train import load_model
    from ecomsim.lifecycle.retention import OBS_SIZE, RetentionEnv
    from ecomsim.lifecycle.retention_config import RetentionConfig

    options = lifecycle_env_kwargs(args.env_id, **options_with_flags("--env-options", args.env_options,
                                                                     catalog=args.catalog, user_model=args.user_model))
    if args.channel is not None:
        raise ValueError(f"--channel is not an option of {args.env_id} (each visit's channel is the customer's), "
                         f"got {args.channel!r}")
    cfg = RetentionConfig.from_kwargs(options)
    agents = {}
    for spec in args.policy:
        if spec.startswith(("ppo:", "dqn:")):
            agent = load_model(spec[4:], spec[:3], device=args.device, trust_pickle=args.trust_pickle)
            agent.check_env(args.env_id, spaces.Discrete(cfg.num_actions), spaces.Box(0.0, 1.0, (OBS_SIZE,)))
            agents[spec] = lambda obs, agent=agent: agent.predict(obs, deterministic=True)[0]
        elif spec not in RETENTION_BASELINES:
            raise ValueError(f"policy for {args.env_id} must be one of {list(RETENTION_BASELINES)}, ppo:PATH or "
                             f"dqn:PATH, got {spec!r}")
    seeds = list(range(args.seed, args.seed + args.sessions))
    tune = list(range(seeds[-1] + 1, seeds[-1] + 1 + max(200, args.sessions // 5)))
    worlds = {"sim": options} if args.sim_only else {"sim": options, "reference": {**options, "user_model": "reference"}}
    results = {}
    for world, opts in worlds.items():
        r = compare_retention_policies(RetentionEnv(**opts), seeds, tune, agents=agents, log=lambda s: None)
        results[world] = {"tuning": r["tuning"], "scores": {k: r["scores"][k] for k in args.policy},
                          "paired": r["paired"]}
    if args.json:
        print(json.dumps({"env_id": args.env_id, "env_options": options, "customers": args.sessions, "seed": args.seed,
                          "results": results}, indent=1))
        return 0
    for world, r in results.items():
        print(f"{args.env_id} {worlds[world]}: {args.sessions} customers per policy, seed {args.seed}, 95% intervals "
              f"({world}; churn_rule threshold {r['tuning']['churn_threshold']}, myopic {r['tuning']['myopic_strategy']!r})")
        print(retention_table(r["scores"], cfg.horizon_days))
        for name, d in r["paired"].items():
            e = d["difference"]
            print(f"  {name} - {d['baseline']} on the same customers: {e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]")
    return 0


if __name__ == "__main__":
    run(main)
