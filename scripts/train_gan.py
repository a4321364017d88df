"""Train the conditional catalog GAN and write the shipped weights, card and default catalog.

    python scripts/train_gan.py                          # the shipped build (fixed seed, a few CPU minutes)
    python scripts/train_gan.py --epochs 3 --out /tmp/gan --catalog-out /tmp/gan/default_catalog.npz   # a quick run
    python scripts/train_gan.py --data obd --out /tmp/obd_gan --catalog-out ''      # the 80-item OBD table

Reads top to bottom: load the training table, split off held-out rows (stratified by
category, seeded), train the WGAN-GP (TensorBoard ``gan/...`` under ``--log-dir``,
checkpoints under ``--checkpoint``, ``--resume`` to continue), score fidelity and
privacy against the held-out rows, write ``<out>/catalog_gan.pt`` + ``.json`` (the
card) and sample the default catalog from a fixed seed.

Ctrl-C or SIGTERM saves the checkpoint at the end of the running epoch (a few seconds)
and prints the command that resumes; exit status 130 or 143.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch

from agents.cli import existing_file, option, or_empty, output_dir, output_file, parse_args, pin_threads, run
from agents.signals import resume_command, stop_signals, stopped
from ecomsim.errors import TrainingStopped
from generators.data import split_table, training_table
from generators.metrics import fidelity_report
from generators.train import GanTrainConfig, train_gan

REPORT_SAMPLE_ROWS = 10_000  # synthetic rows scored against the held-out real rows
REPORT_SEED = 1234  # seed of the scored synthetic sample (kept in the card, reused by the report)
DEFAULT_CATALOG_SEED = 2026


@dataclass
class Args:
    data: str = option("reference", check=lambda v: v in ("reference", "obd") or existing_catalog(v))
    """training table: 'reference', 'obd' or a catalog .npz"""
    epochs: int = option(200, min=1)
    """training epochs (a resumed run trains up to this total)"""
    seed: int = 0
    """seeds the held-out split and the training"""
    holdout: float = 0.2
    """share of rows held out for the fidelity report, in (0, 1)"""
    device: str = "cpu"
    """cpu or cuda[:N]"""
    threads: int = option(1, min=1)
    """torch and BLAS threads"""
    out: str = option("generators/assets", check=output_dir)
    """directory of the weights and card"""
    catalog_out: str = option("ecomsim/assets/default_catalog.npz", check=or_empty(output_file))
    """default catalog sampled from the trained GAN ('' to skip)"""
    catalog_items: int = option(2000, min=1)
    """items of that catalog"""
    log_dir: str = option("runs/gan", check=or_empty(output_dir))
    """TensorBoard directory ('' for none)"""
    checkpoint: str = option("runs/gan/checkpoint.pt", check=or_empty(output_file))
    """checkpoint file ('' for none)"""
    resume: bool = False
    """continue from --checkpoint"""

    def __post_init__(self) -> None:
        if not 0.0 < self.holdout < 1.0:
            raise ValueError(f"argument --holdout: expected a share in (0, 1), got {self.holdout!r}")
        if self.resume and not self.checkpoint:
            raise ValueError("argument --resume: needs a --checkpoint file to continue from, got --checkpoint ''")
        if self.resume and not Path(self.checkpoint).is_file():
            raise ValueError(f"argument --resume: no checkpoint at --checkpoint {self.checkpoint!r}; train without --resume first")


def existing_catalog(path: str) -> None:
    """``--data``: a catalog file (the names 'reference' and 'obd' are checked before)."""
    if not path.endswith(".npz") and not Path(path).exists():
        raise ValueError(f"expected 'reference', 'obd' or a catalog .npz file, got {path!r}")
    existing_file(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    warnings.filterwarnings("ignore", module="sklearn")  # mixture-fit convergence chatter
    t0 = time.perf_counter()
    table, names = training_table(args.data)
    train, holdout = split_table(table, args.holdout, args.seed)
    print(f"data {args.data}: {len(train)} training rows, {len(holdout)} held-out rows, {len(names)} categories")

    cfg = GanTrainConfig(epochs=args.epochs, seed=args.seed, device=args.device,
                         eval_every=max(1, args.epochs // 6), checkpoint_every=max(1, args.epochs // 3))
    with stop_signals() as stop:
        try:
            with stop.deferred():
                gan = train_gan(train, names, cfg, logdir=args.log_dir or None, checkpoint=args.checkpoint or None,
                                resume=args.resume, eval_table=holdout, should_stop=stop)
        except TrainingStopped as exc:
            return stopped(stop, exc, resume_command("scripts/train_gan.py", argv))
        return finish(args, gan, train, holdout, names, t0)


def finish(args: Args, gan, train, holdout, names, t0: float) -> int:
    """Score fidelity and privacy, write the weights, the card and the default catalog."""
    synthetic = gan.sample_table(max(REPORT_SAMPLE_ROWS, len(holdout)), seed=REPORT_SEED)
    report = fidelity_report(train, holdout, synthetic, names, seed=args.seed)
    gan.card.update(
        data=args.data, split={"holdout": args.holdout, "seed": args.seed, "stratified_by": "category"},
        report_sample={"rows": len(synthetic), "seed": REPORT_SEED}, fidelity=report["figures"],
        built_seconds=round(time.perf_counter() - t0, 1), torch_version=torch.__version__,
    )
    card_path = gan.save(args.out)
    print(f"wrote {card_path} and {card_path.with_suffix('.pt')}")
    print(json.dumps({"figures": report["figures"], "met": report["met"], "notes": report["notes"]}, indent=1))

    if args.catalog_out:
        catalog = gan.sample(args.catalog_items, seed=DEFAULT_CATALOG_SEED)
        path = catalog.save(args.catalog_out)
        print(f"wrote {path}: {catalog.num_items} items, categories {list(catalog.category_names)}")
    print(f"done in {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    run(main)
