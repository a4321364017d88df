"""Fidelity and privacy report of a catalog generator (the shipped one by default).

    python scripts/catalog_report.py --json                 # figures as JSON (targets, verdicts)
    python scripts/catalog_report.py --png runs/catalog_report.png
    python scripts/catalog_report.py --json --ctgan         # add CTGAN as a reference row (if importable)

Recreates the generator's training table and held-out split from its card, samples
``--rows`` synthetic rows with the card's report seed, and scores them against the
held-out real rows (``generators.metrics``). Also prints two context rows: ``real_vs_real``
(training rows vs held-out rows: the noise floor of each figure at these sample
sizes) and, with ``--ctgan``, CTGAN trained on the same training rows.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np
import torch

from agents.cli import existing_file, option, or_empty, output_file, parse_args, pin_threads, run
from generators.data import split_table, training_table
from generators.metrics import fidelity_report
from generators.plots import comparison_figure
from generators.sampler import CatalogGAN


@dataclass
class Args:
    card: str | None = option(None, check=existing_file)
    """generator card (.json) (default: the shipped generator)"""
    rows: int | None = option(None, min=1)
    """synthetic rows scored (default: the card's report sample size)"""
    json: bool = False
    """print JSON only"""
    png: str = option("runs/catalog_report.png", check=or_empty(output_file))
    """comparison figure ('' to skip)"""
    ctgan: bool = False
    """add a CTGAN reference row (needs the ctgan package)"""
    ctgan_epochs: int = option(300, min=1)
    """CTGAN training epochs"""
    threads: int = option(1, min=1)
    """torch and BLAS threads"""


def ctgan_row(train, holdout, names, rows: int, epochs: int, seed: int) -> tuple[dict, object]:
    """CTGAN (sdv-dev) on the same training rows, scored the same way; skipped if not importable."""
    try:
        from ctgan import CTGAN
    except ImportError as exc:
        return {"skipped": f"ctgan not importable ({exc}); it pins pandas<3, so install it in a separate venv"}, None
    torch.manual_seed(seed)  # CTGAN draws from torch's global RNG; a script (not library code) may seed it
    np.random.seed(seed)
    t0 = time.perf_counter()
    # helped to a fair fight: positive columns go in on the log scale (raw, CTGAN emits negative prices)
    logged = train.assign(price=np.log(train["price"]), rel_popularity=np.log(train["rel_popularity"]))
    model = CTGAN(epochs=epochs, verbose=False)
    model.fit(logged, discrete_columns=["category"])
    syn = model.sample(rows)
    syn["price"] = np.maximum(np.round(np.exp(syn["price"].to_numpy()), 2), 0.01)
    syn["rel_popularity"] = np.exp(syn["rel_popularity"].to_numpy())
    syn["quality"] = syn["quality"].clip(0.0, 1.0)  # CTGAN's continuous columns are unbounded
    rep = fidelity_report(train, holdout, syn, names)
    return {"figures": rep["figures"], "met": rep["met"], "column_distance": rep["column_distance"],
            "train_seconds": round(time.perf_counter() - t0, 1), "epochs": epochs}, syn


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    warnings.filterwarnings("ignore", module="sklearn")
    gan = CatalogGAN.load(args.card)
    card = gan.card
    table, names = training_table(card["data"])
    train, holdout = split_table(table, card["split"]["holdout"], card["split"]["seed"])
    rows = args.rows if args.rows is not None else card["report_sample"]["rows"]
    synthetic = gan.sample_table(rows, seed=card["report_sample"]["seed"])
    rep = fidelity_report(train, holdout, synthetic, names, seed=card["split"]["seed"])

    # noise floor: real rows the generator never saw (as many as the held-out set) vs held-out rows
    floor_rows = train.sample(n=min(len(train), len(holdout)), random_state=0).reset_index(drop=True)
    floor = fidelity_report(train.drop(index=[]), holdout, floor_rows, names)["figures"]
    floor.pop("dcr_ratio"), floor.pop("exact_copies")  # rows of train: distance 0 by construction

    out = {
        "generator": {"card": card.get("weights"), "sha256": card["sha256"][:16], "data": card["data"],
                      "train_rows": len(train), "holdout_rows": len(holdout), "synthetic_rows": rows},
        "figures": rep["figures"], "targets": rep["targets"], "met": rep["met"],
        "column_distance": rep["column_distance"], "median_price_by_category": rep["median_price_by_category"],
        "privacy": rep["privacy"], "notes": rep["notes"], "real_vs_real": floor,
        "card_fidelity": card.get("fidelity"),
    }
    extra = {}
    if args.ctgan:
        out["ctgan"], syn = ctgan_row(train, holdout, names, rows, args.ctgan_epochs, card["split"]["seed"])
        if syn is not None:
            extra["ctgan"] = syn
    if args.png:
        out["png"] = str(comparison_figure(holdout, synthetic, args.png, extra=extra,
                                           title=f"held-out real vs {card.get('weights')} ({card['data']})"))
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"generator {out['generator']}")
    for key, value in rep["figures"].items():
        verdict = "met" if rep["met"][key] else "MISSED"
        print(f"  {key:28s} {value:8.4f}  target {rep['targets'].get(key, rep['targets'].get('dcr_ratio_min'))}  {verdict}")
    for note in rep["notes"]:
        print(f"  note: {note}")
    print(f"  real-vs-real floor: {json.dumps({k: round(v, 4) for k, v in floor.items()})}")
    if "ctgan" in out:
        print(f"  ctgan: {json.dumps(out['ctgan'].get('figures', out['ctgan']))}")
    if args.png:
        print(f"  figure: {out['png']}")
    return 0


if __name__ == "__main__":
    run(main)
