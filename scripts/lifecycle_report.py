"""CDNOW figures of the lifecycle model next to BG/NBD (``ecomsim.lifecycle.report``), under stable keys.

Weeks 1-39 of the CDNOW sample are what the defaults were calibrated on
(``scripts/calibrate_lifecycle.py``); weeks 40-78 are a forecast. Visits are real
sessions of the reference world under the popularity ranking (``--visits sessions``,
default; about 3 minutes on one core) or the fitted emulator (``--visits emulator``,
seconds; entrants still drawn with real sessions unless ``--entry emulator``).

    python scripts/lifecycle_report.py --json
    python scripts/lifecycle_report.py --visits emulator --seed 2 --replicas 8
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from agents.cli import option, parse_args, pin_threads, run
from ecomsim.lifecycle.emulator import load_visit_emulator
from ecomsim.lifecycle.report import cdnow_report
from ecomsim.lifecycle.sessions import SessionVisits


@dataclass
class Args:
    visits: Literal["sessions", "emulator"] = "sessions"
    """what simulates return visits: real sessions of the reference world or the fitted emulator"""
    entry: Literal["sessions", "emulator"] = "sessions"
    """what draws the entrants' first visits"""
    seed: int = 1
    """seed of the simulated cohort"""
    replicas: int = option(8, min=1)
    """simulated customers per real customer"""
    json: bool = False
    """print the figures as one JSON object"""
    threads: int = option(1, min=1)
    """torch and BLAS threads (the machine is shared)"""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    made = {}

    def simulator(kind: str):
        if kind not in made:
            made[kind] = SessionVisits() if kind == "sessions" else load_visit_emulator()
        return made[kind]

    report = cdnow_report(simulator(args.visits), simulator(args.entry), seed=args.seed, replicas=args.replicas)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    weeks = 78
    rows = [("repeat transactions TV, weeks 1-39 (<= 0.05)", "repeat_tv_calibration", None),
            ("inter-purchase time KS, weeks 1-39 (<= 0.10)", "ipt_ks_calibration", None),
            (f"cumulative repeat transactions, week {weeks}", f"cumulative_week{weeks}", f"cumulative_week{weeks}"),
            ("  error vs data (within 10%)", f"cumulative_week{weeks}_error", f"cumulative_week{weeks}_error"),
            ("weekly cumulative curve MAPE, weeks 40-78", "curve_mape_holdout", "curve_mape_holdout"),
            ("weekly cumulative curve MAPE, weeks 1-39", "curve_mape_calibration", "curve_mape_calibration"),
            ("AUC, any repeat purchase in weeks 40-78", "churn_auc", "p_alive_auc")]
    print(f"CDNOW sample, {report['cdnow.data.customers']} customers; visits: {report['cdnow.settings.visits']}, "
          f"{args.replicas} simulated per real customer, seed {args.seed}")
    print(f"data: {report[f'cdnow.data.cumulative_week{weeks}']} repeat transactions by week {weeks}")
    print(f"{'figure':48s} {'lifecycle':>10s} {'BG/NBD':>10s}")
    for label, ours, theirs in rows:
        right = "" if theirs is None else f"{report[f'cdnow.bgnbd.{theirs}']:10.4f}"
        print(f"{label:48s} {report[f'cdnow.sim.{ours}']:10.4f} {right}")
    print(f"BG/NBD expected-transactions AUC: {report['cdnow.bgnbd.expected_auc']:.4f} (P(alive) is 1 for x = 0)")
    print("targets met: " + ", ".join(k.split(".")[-1] for k, v in report.items() if k.startswith("cdnow.target.") and v))
    return 0


if __name__ == "__main__":
    run(main)
