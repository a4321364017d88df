"""Train d3rlpy's discrete CQL on an ecomsim Minari dataset; export the Q-network as weights plus a JSON card.

Runs in d3rlpy's own venv (d3rlpy 2.8 pins gymnasium 1.0.0; recipe in docs/offline_rl.md).
Writes ``<out>/q_network.pt`` (tensors only, ``torch.load(..., weights_only=True)``) and
``<out>/card.json`` (algorithm and hyperparameters, env id and options, spaces, network,
sha256, dataset), which ``agents.offline.load_offline_policy`` reads without d3rlpy.
Score the result in the main environment with ``scripts/score_offline.py``.

    /work/venvs/d3rlpy/bin/python scripts/train_offline.py --datasets-path runs/minari --out runs/cql
    /work/venvs/d3rlpy/bin/python scripts/train_offline.py --datasets-path runs/minari --network mlp --hidden 128,128 --out runs/cql-mlp
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

# light imports only (numpy at most): the main environment loads this file to read its Args without
# d3rlpy, and d3rlpy's venv has gymnasium 1.0; d3rlpy and torch load in main
from agents.cli import option, parse_args, pin_threads, run
from agents.minari_io import datasets_path_or_default, ecomsim_meta, load_dataset, to_transitions


@dataclass
class Args:
    out: str
    """directory for q_network.pt and card.json"""
    datasets_path: str | None = None
    """directory of Minari datasets (default: $MINARI_DATASETS_PATH, through
    agents.minari_io.datasets_path_or_default; required when that is unset)"""
    dataset_id: str = "ecomsim/recommend-dnn-logging-v0"
    """the Minari dataset to train on"""
    steps: int = option(10_000, min=1)
    """gradient steps"""
    batch_size: int = option(128, min=1)
    """transitions per gradient step"""
    learning_rate: float = 3e-4
    """Adam step size"""
    gamma: float = 0.99
    """discount per step"""
    alpha: float = 1.0
    """weight of CQL's conservative term"""
    target_update_interval: int = option(1000, min=1)
    """gradient steps between target-network copies"""
    n_critics: int = option(1, min=1)
    """Q-networks in the ensemble"""
    network: Literal["mlp", "candidate"] = "candidate"
    """candidate: one scorer shared over the candidates; mlp: d3rlpy's MLP over the whole observation"""
    hidden: tuple[int, ...] = option((64, 64), min=1)
    """hidden widths, comma-separated (the mlp run used 128,128)"""
    scaler: bool = True
    """standardise the observations (--no-scaler feeds them raw)"""
    seed: int = 0
    """d3rlpy's seed"""
    json: bool = False
    """print the card as JSON"""
    threads: int = option(1, min=1)
    """torch and BLAS threads"""

    def __post_init__(self) -> None:
        self.datasets_path = datasets_path_or_default(self.datasets_path)
        if not self.datasets_path:
            raise ValueError("--datasets-path is required (or set MINARI_DATASETS_PATH)")
        if not Path(self.datasets_path).is_dir():
            raise ValueError(f"--datasets-path must be an existing directory, got {self.datasets_path!r}")
        if Path(self.out).exists() and not Path(self.out).is_dir():
            raise ValueError(f"--out must be a directory, got the file {self.out!r}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    try:
        import d3rlpy  # noqa: F401
    except ImportError as exc:
        raise ValueError("d3rlpy is not importable in this interpreter: run this script with d3rlpy's venv "
                         "(recipe in docs/offline_rl.md)") from exc
    from agents.offline import save_offline_policy
    from agents.offline_train import CQLTrainConfig, train_cql

    common = dict(steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate, gamma=args.gamma,
                  alpha=args.alpha, target_update_interval=args.target_update_interval, n_critics=args.n_critics,
                  hidden_units=args.hidden, observation_scaler="standard" if args.scaler else None, seed=args.seed)
    CQLTrainConfig(**common)  # every hyperparameter checked before the dataset is read
    dataset = load_dataset(args.dataset_id, args.datasets_path)
    meta = ecomsim_meta(dataset)
    if args.network == "candidate" and "context_dim" not in meta:
        raise ValueError(f"dataset {args.dataset_id!r} metadata lacks context_dim, needed by --network candidate")
    config = CQLTrainConfig(**common, network=args.network,
                            context_dim=int(meta["context_dim"]) if args.network == "candidate" else None)
    if type(dataset.action_space).__name__ != "Discrete":
        raise ValueError(f"dataset {args.dataset_id!r} has action space {dataset.action_space}, discrete CQL needs Discrete")
    num_actions = int(dataset.action_space.n)
    transitions = to_transitions(dataset)
    net, summary = train_cql(transitions, num_actions, config, log_dir=str(Path(args.out) / "d3rlpy_logs"))
    card_path = save_offline_policy(
        net, args.out, algorithm="d3rlpy DiscreteCQL", env_id=meta["env_id"], env_options=meta["env_options"],
        extra={"algorithm_config": config.to_card(),
               "dataset": {"id": args.dataset_id, "episodes": int(dataset.total_episodes), "steps": int(dataset.total_steps),
                           "ecomsim": meta},
               "training": summary})
    card = json.loads(card_path.read_text())
    if args.json:
        print(json.dumps(card, indent=1))
    else:
        last = summary["epochs"][-1] if summary["epochs"] else {}
        print(f"trained DiscreteCQL for {config.steps} steps in {summary['seconds']} s on {dataset.total_steps} transitions "
              f"({args.dataset_id}); last epoch {last}")
        print(f"wrote {card_path} and {Path(args.out) / card['weights']['file']} (sha256 {card['weights']['sha256'][:12]}...)")
        print(f"score it (main env): python3 scripts/score_offline.py --card {card_path}")
    return 0


if __name__ == "__main__":
    run(main)
