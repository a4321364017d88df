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

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from agents.cli import one_of, option, parse_args, pin_threads, run
from agents.minari_io import datasets_path_or_default, default_dataset_id, write_dataset
from agents.offline_data import collect
from agents.propensity import SCORES, SoftmaxPolicy
from ecomsim.config import EnvConfig
from ecomsim.registration import env_kwargs


@dataclass
class Args:
    datasets_path: str | None = None
    """directory of Minari datasets, where the dataset is written (default: $MINARI_DATASETS_PATH, through
    agents.minari_io.datasets_path_or_default; required when that is unset)"""
    dataset_id: str | None = None
    """the dataset's id (default: ecomsim/<id name>-<user model>-logging-v0)"""
    env_id: str = "ecomsim/Recommend-v0"
    """a one-item-per-step id"""
    user_model: str | None = None
    """dnn | reference (default: the env's, dnn)"""
    sessions: int = option(5000, min=1)
    """whole sessions to log (5000 are about 70k steps)"""
    seed: int = 0
    """seeds the env (sub-env i: seed + i) and the logging policy"""
    scores: str = option("greedy", check=one_of(SCORES))
    """logging scores: greedy | click_greedy | popularity"""
    temperature: float = 0.5
    """softmax temperature on the log scores"""
    epsilon: float = 0.1
    """share of uniform exploration"""
    num_envs: int = option(256, min=1)
    """sessions stepped together"""
    json: bool = False
    """print a JSON summary"""
    threads: int = option(1, min=1)
    """torch and BLAS threads"""

    def __post_init__(self) -> None:
        self.datasets_path = datasets_path_or_default(self.datasets_path)
        if not self.datasets_path:
            raise ValueError("--datasets-path is required (or set MINARI_DATASETS_PATH): where the dataset is written")
        if Path(self.datasets_path).exists() and not Path(self.datasets_path).is_dir():
            raise ValueError(f"--datasets-path must be a directory, got the file {self.datasets_path!r}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    options = env_kwargs(args.env_id, user_model=args.user_model)
    config = EnvConfig.from_kwargs(options)
    if config.mode != "recommend":
        raise ValueError(f"--env-id must be a one-item-per-step id (mode 'recommend'), got {args.env_id!r}")
    dataset_id = default_dataset_id(args.env_id, config.user_model) if args.dataset_id is None else args.dataset_id
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
    run(main)
