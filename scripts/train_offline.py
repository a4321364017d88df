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
    p.add_argument("--datasets-path", default=os.environ.get("MINARI_DATASETS_PATH"),
                   help="directory of Minari datasets (default: $MINARI_DATASETS_PATH; required)")
    p.add_argument("--dataset-id", default="ecomsim/recommend-dnn-logging-v0")
    p.add_argument("--out", required=True, help="directory for q_network.pt and card.json")
    p.add_argument("--steps", type=int, default=10_000, help="gradient steps (default 10000)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--learning-rate", type=float, default=3e-4)
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--alpha", type=float, default=1.0, help="weight of CQL's conservative term")
    p.add_argument("--target-update-interval", type=int, default=1000)
    p.add_argument("--n-critics", type=int, default=1)
    p.add_argument("--network", default="candidate", choices=["mlp", "candidate"],
                   help="candidate (default): one scorer shared over the candidates; mlp: d3rlpy's MLP over the whole observation")
    p.add_argument("--hidden", default="64,64", help="hidden widths, comma-separated (default 64,64; the mlp run used 128,128)")
    p.add_argument("--no-scaler", action="store_true", help="feed raw observations (default: standardised)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the card as JSON")
    args = p.parse_args(argv)
    if not args.datasets_path:
        p.error("--datasets-path is required (or set MINARI_DATASETS_PATH)")
    if not Path(args.datasets_path).is_dir():
        p.error(f"--datasets-path must be an existing directory, got {args.datasets_path!r}")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        p.error(f"--out must be a directory, got the file {args.out!r}")
    try:
        args.hidden_units = tuple(int(h) for h in args.hidden.split(","))
    except ValueError:
        p.error(f"--hidden must be comma-separated integers, got {args.hidden!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(1)
    try:
        import d3rlpy  # noqa: F401
    except ImportError as exc:
        raise ValueError("d3rlpy is not importable in this interpreter: run this script with d3rlpy's venv "
                         "(recipe in docs/offline_rl.md)") from exc
    from agents.minari_io import ecomsim_meta, load_dataset, to_transitions
    from agents.offline import save_offline_policy
    from agents.offline_train import CQLTrainConfig, train_cql

    common = dict(steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate, gamma=args.gamma,
                  alpha=args.alpha, target_update_interval=args.target_update_interval, n_critics=args.n_critics,
                  hidden_units=args.hidden_units, observation_scaler=None if args.no_scaler else "standard", seed=args.seed)
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
    from agents.cli import run

    run(main)
