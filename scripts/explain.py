"""Write the explanation report of a trained policy: one HTML page, pictures embedded.

    python scripts/explain.py                                   # the PPO of the default run (scripts/train_agent.py)
    python scripts/explain.py --policy ppo:runs/slate/model.pt --out runs/slate/explain.html --sessions 5

The agent is loaded from the project's safe model format (``model.pt`` + ``model.json``,
``agents/model_files.py``; an SB3 zip only with ``--trust-pickle``), and its env is rebuilt
from its card (the id and options it was trained on) with the DNN shoppers, whose
behaviour the page explains. The page (``ecomsim.explain.report``): ``--sessions`` seeded
sessions step by step (the items shown, the outcome, the shopper's patience and intent,
the top reasons for click and purchase), the policy's most influential candidate features
(Integrated Gradients of the score of the candidate it picks), and global importances of the
behaviour model over ``--importance-steps`` logged reference-world steps, as pictures.
Needs the optional extra ``explain`` (Captum).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from agents.cli import option, output_file, parse_args, pin_threads, run
from agents.registry import MODEL_KINDS, AgentFactory, policy_factory

DEFAULT_RUN = "runs/ppo-recommend-s0/model.pt"  # where `python scripts/train_agent.py` writes its agent


@dataclass
class Args:
    policy: str = f"ppo:{DEFAULT_RUN}"
    """the trained agent: ppo:PATH or dqn:PATH (its model.pt)"""
    out: str = option("runs/explain.html", check=output_file)
    """the HTML file to write"""
    sessions: int = option(3, min=1)
    """sessions traced step by step"""
    seed: int = 0
    """seed of the traced sessions (seed, seed + 1, ...) and of the importance sample"""
    max_steps: int = option(30, min=1)
    """steps traced per session at most"""
    policy_observations: int = option(256, min=1)
    """observations the policy's attributions average over (its own sessions)"""
    importance_steps: int = option(1000, min=1)
    """logged reference-world steps of the global importances"""
    device: str = "cpu"
    """device of the loaded agent: auto, cpu, cuda or cuda:N"""
    trust_pickle: bool = False
    """also load a Stable-Baselines3 zip (ppo:FILE.zip): SB3 unpickles it, which runs any code a crafted file holds"""
    threads: int = option(1, min=1)
    """torch and BLAS threads"""

    def __post_init__(self) -> None:
        kind = self.policy.split(":", 1)[0]
        if ":" not in self.policy or kind not in MODEL_KINDS:
            raise ValueError(f"argument --policy: expected a trained agent, ppo:PATH or dqn:PATH (the report "
                             f"attributes its network's scores), got {self.policy!r}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    from ecomsim.explain.shoppers import captum_ig

    captum_ig()  # the optional extra, before any work
    t0 = time.perf_counter()
    factory = policy_factory(args.policy, device=args.device, trust_pickle=args.trust_pickle)
    assert isinstance(factory, AgentFactory)  # Args allows ppo:/dqn: specs only
    agent = factory.agent
    env_id, options = agent.card["env_id"], dict(agent.card.get("env_options") or {})
    if env_id is None:
        raise ValueError(f"agent {args.policy!r} has no env id in its card; the report needs the env it was trained on")
    if options.get("user_model", "dnn") != "dnn":
        print(f"note: the agent was trained with user_model={options['user_model']!r}; the report runs it with the "
              "DNN shoppers (user_model='dnn'), whose behaviour it explains")
    options["user_model"] = "dnn"

    import gymnasium as gym

    import ecomsim  # noqa: F401  (registers the ids)
    from ecomsim.explain.report import build_report, write_report

    env = gym.make(env_id, **options)
    agent.check_env(env_id, env.action_space, env.observation_space)
    page = build_report(agent, env, num_sessions=args.sessions, seed=args.seed, max_steps=args.max_steps,
                        policy_observations=args.policy_observations, importance_sample=args.importance_steps,
                        title=f"ecomsim: why the shoppers and {args.policy} act as they do")
    path = write_report(args.out, page)
    print(f"wrote {path} ({len(page) / 1e3:.0f} kB) in {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    run(main)
