"""Train a recommendation policy on ecomsim and score it against the baselines by conversion.

With no arguments: PPO on ``ecomsim/Recommend-v0`` with the defaults of
``agents/defaults.py`` (a few minutes on 2 CPU cores), then random, popularity,
greedy and the LinUCB bandit are scored on the same seeded sessions, in the env's
simulator and in the reference world. Writes under ``--out`` (default
``runs/<algo>-<env>-s<seed>``): ``model.zip``, ``checkpoint.zip`` + ``state.json``
(for ``--resume``), ``results.json``, ``report.png`` and TensorBoard logs in ``tb/``.

    python scripts/train_agent.py
    python scripts/train_agent.py --algo dqn --timesteps 500000
    python scripts/train_agent.py --env-id ecomsim/Slate-v0 --out runs/slate
    tensorboard --logdir runs
"""

from __future__ import annotations

import os

# one BLAS / OpenMP thread unless told otherwise: the networks and the shopper model's
# matrices are small, and on a shared 2-core machine extra BLAS threads spin and slow the
# simulator down by up to 10x (measured with the numpy DNN forward at 256 envs)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from agents.evaluation import SB3Policy, score  # noqa: E402
from agents.registry import policy_factory  # noqa: E402
from agents.report import plot_run, score_table, write_results  # noqa: E402
from agents.train import AgentTrainConfig, train  # noqa: E402
from ecomsim.registration import env_kwargs  # noqa: E402

BASELINES = ("random", "popularity", "greedy", "bandit")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algo", default="ppo", choices=["ppo", "dqn"])
    p.add_argument("--env-id", default="ecomsim/Recommend-v0")
    p.add_argument("--timesteps", type=int, default=None, help="training env steps (default: the algorithm's default)")
    p.add_argument("--sessions", type=int, default=5000, help="evaluation sessions per policy and world")
    p.add_argument("--out", default=None, help="output dir (default runs/<algo>-<env>-s<seed>)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda (auto picks CUDA when present)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.zip up to --timesteps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-envs", type=int, default=None, help="training sessions stepped together (default per algo)")
    p.add_argument("--user-model", default=None, help="shopper model of the simulator (default: the env's)")
    p.add_argument("--catalog", default=None, help="catalog name or file (default: the env's)")
    p.add_argument("--channel", default=None, choices=["app", "web", "social"])
    p.add_argument("--checkpoint-every", type=int, default=100_000, help="env steps between checkpoints")
    p.add_argument("--eval-every", type=int, default=None, help="env steps between periodic evaluations (default timesteps/8; 0 = off)")
    p.add_argument("--eval-sessions", type=int, default=1000, help="sessions per periodic evaluation")
    p.add_argument("--hyperparams", default="{}", help='JSON overrides of agents/defaults.py, e.g. \'{"learning_rate": 1e-3}\'')
    p.add_argument("--baselines", default=",".join(BASELINES), help="comma-separated baselines to score ('' for none)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest for these small networks)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = p.parse_args(argv)
    for name in ("sessions", "checkpoint_every", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.timesteps is not None and args.timesteps < 1:
        p.error(f"--timesteps must be >= 1, got {args.timesteps}")
    try:
        args.hyperparams = json.loads(args.hyperparams)
    except json.JSONDecodeError as exc:
        p.error(f"--hyperparams must be a JSON object, got {args.hyperparams!r} ({exc})")
    if not isinstance(args.hyperparams, dict):
        p.error(f"--hyperparams must be a JSON object, got {args.hyperparams!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    options = {k: v for k, v in {"user_model": args.user_model, "catalog": args.catalog, "channel": args.channel}.items()
               if v is not None}
    config = AgentTrainConfig(algo=args.algo, env_id=args.env_id, env_options=options, seed=args.seed, device=args.device,
                         num_envs=args.num_envs, hyperparams=args.hyperparams, checkpoint_every=args.checkpoint_every,
                         eval_sessions=args.eval_sessions, progress_bar=not args.no_progress)
    if args.timesteps is not None:
        config.timesteps = args.timesteps
    config.eval_every = args.eval_every if args.eval_every is not None else max(1, config.timesteps // 8)
    short = args.env_id.split("/")[-1].split("-")[0].lower()
    out = Path(args.out or f"runs/{args.algo}-{short}-s{args.seed}")
    print(f"training {args.algo.upper()} on {args.env_id} for {config.timesteps} steps -> {out}")
    try:
        model, summary = train(config, out, resume=args.resume)
    except KeyboardInterrupt:
        return 130

    start = time.time()
    kwargs = env_kwargs(args.env_id, **options)
    # far from the training seeds (seed + i) and the periodic evaluation (seed + 10_000 + i)
    eval_seed = args.seed + 1_000_000
    rows = {args.algo: score(lambda: SB3Policy(model, args.algo), kwargs, args.sessions, seed=eval_seed)}
    for name in [b for b in args.baselines.split(",") if b]:
        rows[name] = score(policy_factory(name), kwargs, args.sessions, seed=eval_seed)
    table = score_table(rows, reference="popularity" if "popularity" in rows else None)
    print(f"\n{args.env_id} {kwargs}: {args.sessions} evaluation sessions per policy and world, 95% CIs")
    print(table)

    results = {
        "config": config.to_dict(),
        "resolved_hyperparams": summary["resolved"],
        "timesteps": summary["timesteps"],
        "train_seconds": summary["train_seconds"],
        "eval_seconds": round(time.time() - start, 1),
        "eval_sessions": args.sessions,
        "eval_seed": eval_seed,
        "env_options": kwargs,
        "scores": {name: {w: r.to_dict() for w, r in by.items()} for name, by in rows.items()},
        "learning_curve": summary["eval_history"],
        "training_sessions": summary["rollout_history"],
        "model": str(out / "model.zip"),
    }
    write_results(out / "results.json", results)
    plot_run(out / "report.png", summary, rows, f"{args.algo.upper()} on {args.env_id}, {summary['timesteps']} steps")
    print(f"\nwrote {out / 'model.zip'}, {out / 'results.json'}, {out / 'report.png'}; tensorboard --logdir {out / 'tb'}")
    return 0


if __name__ == "__main__":
    from agents.cli import run

    run(main)
