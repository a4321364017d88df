"""Train Ray RLlib PPO on ecomsim with N env runners and score it against the baselines by conversion.

Needs Ray RLlib, an optional extra (``pip install -e ".[rllib]"``; it pins
gymnasium==1.2.2, which ecomsim supports; README "Ray RLlib" has a venv recipe). Each env
runner steps the native batched env (``ecomsim.integrations.rllib``); ``--num-workers``
splits each runner's sessions further across processes. Writes under ``--out`` (default
``runs/rllib-<env>-s<seed>``) what ``scripts/train_agent.py`` writes: ``results.json``,
``report.png`` and TensorBoard logs in ``tb/`` (``ecom/*`` and ``eval/*``), with the agent as
an RLlib checkpoint in ``checkpoint/``. Ctrl-C or SIGTERM saves the checkpoint and stops
(exit status 130 or 143).

    python scripts/train_rllib.py --num-env-runners 2 --timesteps 200000
    python scripts/train_rllib.py --num-env-runners 0 --timesteps 20000 --sessions 1000

On a Ray cluster (ecomsim installed on every machine): ``ray start --head`` on one machine,
``ray start --address=HEAD_IP:6379`` on the others, then on the head

    python scripts/train_rllib.py --address auto --num-env-runners 16 --num-envs-per-env-runner 64
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from agents.cli import option, output_dir, parse_args, pin_threads, run
from agents.evaluation import score
from agents.registry import POLICY_NAMES, policy_factory
from agents.report import plot_run, run_results, score_table, write_results
from agents.signals import stop_signals, stopped
from ecomsim.errors import TrainingStopped, check_choice
from ecomsim.registration import env_kwargs


@dataclass
class Args:
    env_id: str = "ecomsim/Recommend-v0"
    """a registered ecomsim id"""
    timesteps: int = option(200_000, min=1)
    """training env steps (whole PPO iterations of --train-batch-size steps)"""
    num_env_runners: int = option(2, min=0)
    """remote env runner processes (0: sampling in the driver process)"""
    num_envs_per_env_runner: int = option(16, min=1)
    """sessions each runner steps together in one native vector env"""
    num_workers: int = option(1, min=1)
    """processes each runner's vector env splits its sessions across (ecomsim.shards)"""
    train_batch_size: int = option(2048, min=1)
    """env steps per PPO iteration"""
    hidden: int = option(64, min=1)
    """width of the two hidden layers of the policy and value networks"""
    sessions: int = option(5000, min=1)
    """evaluation sessions per policy and world"""
    eval_every: int = option(50_000, min=0)
    """env steps between periodic evaluations (0: none)"""
    eval_sessions: int = option(1000, min=1)
    """sessions per periodic evaluation"""
    seed: int = 0
    """seeds RLlib and the runners' envs, the periodic evaluation (seed + 10000) and the final scores (seed + 1000000)"""
    user_model: str | None = None
    """the simulator's shopper model (default: the env's)"""
    catalog: str | None = None
    """catalog name or file (default: the env's)"""
    channel: Literal["app", "web", "social"] | None = None
    """fix the shoppers' channel (default: the population's mix)"""
    baselines: tuple[str, ...] = ("random", "popularity", "greedy")
    """baselines scored next to the trained policy ('' for none)"""
    address: str | None = None
    """a Ray cluster to join ('auto': the one `ray start` runs on this machine); default: a local Ray"""
    out: str | None = option(None, check=output_dir)
    """output directory (default: runs/rllib-<env>-s<seed>)"""
    threads: int = option(1, min=1)
    """torch and BLAS threads of the driver (the learner)"""

    def __post_init__(self) -> None:
        for name in self.baselines:
            check_choice("--baselines", name, POLICY_NAMES)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ValueError('Ray RLlib is not installed: pip install -e ".[rllib]" (README "Ray RLlib")') from None
    from agents.rllib_train import RLlibPolicy, RLlibTrainConfig, train_rllib

    options = {k: v for k, v in {"user_model": args.user_model, "catalog": args.catalog, "channel": args.channel}.items()
               if v is not None}
    config = RLlibTrainConfig(env_id=args.env_id, env_options=options, timesteps=args.timesteps, seed=args.seed,
                              num_env_runners=args.num_env_runners, num_envs_per_env_runner=args.num_envs_per_env_runner,
                              num_workers=args.num_workers, hidden=args.hidden, train_batch_size=args.train_batch_size,
                              eval_every=args.eval_every, eval_sessions=args.eval_sessions, address=args.address)
    short = args.env_id.split("/")[-1].split("-")[0].lower()
    out = Path(args.out if args.out is not None else f"runs/rllib-{short}-s{args.seed}")
    if (out / "checkpoint").exists():
        raise FileExistsError(f"output directory {str(out)!r} already holds a run (checkpoint/); write elsewhere with "
                              "--out, or delete it")
    out.mkdir(parents=True, exist_ok=True)
    print(f"training RLlib PPO on {args.env_id} for {args.timesteps} steps with {args.num_env_runners} env runners "
          f"x {args.num_envs_per_env_runner} sessions -> {out}")
    with stop_signals() as stop:
        try:
            with stop.deferred():
                algo, summary = train_rllib(config, out, should_stop=stop)
        except TrainingStopped as exc:
            return stopped(stop, exc, None)
    start = time.time()
    kwargs = env_kwargs(args.env_id, **options)
    eval_seed = args.seed + 1_000_000  # far from the training and periodic-evaluation seeds, as train_agent.py
    module = algo.get_module()
    rows = {"ppo": score(lambda: RLlibPolicy(module), kwargs, args.sessions, seed=eval_seed)}
    for name in args.baselines:
        rows[name] = score(policy_factory(name), kwargs, args.sessions, seed=eval_seed)
    algo.stop()
    print(f"\n{args.env_id} {kwargs}: {args.sessions} evaluation sessions per policy and world, 95% CIs")
    print(score_table(rows, reference="popularity" if "popularity" in rows else None))
    results = run_results(config, summary, rows, kwargs, time.time() - start, args.sessions, eval_seed,
                          out / "checkpoint")
    results["env_steps_per_s"] = summary["steps_per_s"]
    write_results(out / "results.json", results)
    plot_run(out / "report.png", summary, rows, f"RLlib PPO on {args.env_id}, {summary['timesteps']} steps, "
                                                f"{args.num_env_runners} env runners")
    print(f"\nwrote {out / 'checkpoint'}, {out / 'results.json'}, {out / 'report.png'}; tensorboard --logdir {out / 'tb'}")
    return 0


if __name__ == "__main__":
    run(main)
