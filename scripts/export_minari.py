"""Log sessions of an ecomsim env under a stochastic logging policy and write them as a Minari dataset.

The logging policy shows candidate ``a`` with probability
``(1 - epsilon) * softmax(score / temperature)[a] + epsilon / num_candidates`` (scores: a
baseline's log P(purchase), log P(click) or log popularity); every step's info holds the
probability of the action taken (``propensity``) and the whole distribution
(``logging_probs``). Layout and alignment: ``agents/minari_io.py``. Same seed, same dataset.

    python scripts/export_minari.py --datasets-path runs/minari
    python scripts/export_minari.py --datasets-path runs/minari --user-model reference --sessions 2000 --seed 1
    python -c "import minari; print(minari.load_dataset('ecomsim/recommend-dnn-logging-v0'))"   # with MINARI_DATASETS_PATH set
"""

from __future__ import annotations

import os

# one BLAS / OpenMP thread: the shopper model's matrices are small; extra threads only spin on a shared CPU
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets-path", default=os.environ.get("MINARI_DATASETS_PATH"),
                   help="directory of Minari datasets (default: $MINARI_DATASETS_PATH; required)")
    p.add_argument("--dataset-id", default=None, help="default ecomsim/<id name>-<user model>-logging-v0")
    p.add_argument("--env-id", default="ecomsim/Recommend-v0", help="a one-item-per-step id")
    p.add_argument("--user-model", default=None, help="dnn | reference (default: the env's, dnn)")
    p.add_argument("--sessions", type=int, default=5000, help="whole sessions to log (default 5000, about 70k steps)")
    p.add_argument("--seed", type=int, default=0, help="seeds the env (sub-env i: seed + i) and the logging policy")
    p.add_argument("--scores", default="greedy", help="logging scores: greedy | click_greedy | popularity")
    p.add_argument("--temperature", type=float, default=0.5, help="softmax temperature on the log scores (default 0.5)")
    p.add_argument("--epsilon", type=float, default=0.1, help="share of uniform exploration (default 0.1)")
    p.add_argument("--num-envs", type=int, default=256, help="sessions stepped together")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    args = p.parse_args(argv)
    if not args.datasets_path:
        p.error("--datasets-path is required (or set MINARI_DATASETS_PATH): where the dataset is written")
    if args.sessions < 1:
        p.error(f"--sessions must be >= 1, got {args.sessions}")
    if args.num_envs < 1:
        p.error(f"--num-envs must be >= 1, got {args.num_envs}")
    if Path(args.datasets_path).exists() and not Path(args.datasets_path).is_dir():
        p.error(f"--datasets-path must be a directory, got the file {args.datasets_path!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from agents.minari_io import default_dataset_id, write_dataset
    from agents.offline_data import collect
    from agents.propensity import SoftmaxPolicy
    from ecomsim.config import EnvConfig
    from ecomsim.registration import env_kwargs

    options = env_kwargs(args.env_id, user_model=args.user_model)
    config = EnvConfig.from_kwargs(options)
    if config.mode != "recommend":
        raise ValueError(f"--env-id must be a one-item-per-step id (mode 'recommend'), got {args.env_id!r}")
    dataset_id = args.dataset_id or default_dataset_id(args.env_id, config.user_model)
    target = Path(args.datasets_path) / dataset_id
    if target.exists():
        raise ValueError(f"dataset {dataset_id!r} already exists at {str(target)!r}; delete it or pass another --dataset-id")
    policy = SoftmaxPolicy(args.scores, args.temperature, args.epsilon)
    t0 = time.perf_counter()
    logs = collect(policy, options, args.sessions, seed=args.seed, num_envs=args.num_envs, env_id=args.env_id)
    t1 = time.perf_counter()
    dataset = write_dataset(logs, dataset_id, args.datasets_path)
    t2 = time.perf_counter()
    summary = {"dataset_id": dataset_id, "path": str(target), "episodes": dataset.total_episodes,
               "steps": dataset.total_steps, "env_id": args.env_id, "env_options": options,
               "logging_policy": policy.describe(), "seed": args.seed,
               "mean_return": float(logs.returns().mean()), "log_seconds": round(t1 - t0, 1),
               "write_seconds": round(t2 - t1, 1)}
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"wrote {dataset_id} ({summary['episodes']} episodes, {summary['steps']} steps, mean return "
              f"{summary['mean_return']:.4f}) to {target} in {summary['log_seconds']} s logging + {summary['write_seconds']} s writing")
    return 0


if __name__ == "__main__":
    from agents.cli import run

    run(main)
