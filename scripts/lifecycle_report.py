"""CDNOW figures of the lifecycle model next to BG/NBD (``ecomsim.lifecycle.report``), under stable keys.

Weeks 1-39 of the CDNOW sample are what the defaults were calibrated on
(``scripts/calibrate_lifecycle.py``); weeks 40-78 are a forecast. Visits are real
sessions of the reference world under the popularity ranking (``--visits sessions``,
default; about 3 minutes on one core) or the fitted emulator (``--visits emulator``,
seconds; entrants still drawn with real sessions unless ``--entry emulator``).

Usage: ``python scripts/lifecycle_report.py [--json] [--visits sessions|emulator] [--seed 1] [--replicas 8]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy: one BLAS thread (the machine is shared)

import argparse
import json

from agents.cli import run
from ecomsim.lifecycle.emulator import load_visit_emulator
from ecomsim.lifecycle.report import cdnow_report
from ecomsim.lifecycle.sessions import SessionVisits

KINDS = ("sessions", "emulator")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--visits", default="sessions", help=f"what simulates return visits: {' | '.join(KINDS)}")
    ap.add_argument("--entry", default="sessions", help=f"what draws the entrants' first visits: {' | '.join(KINDS)}")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--replicas", type=int, default=8, help="simulated customers per real customer")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args()
    for flag in ("visits", "entry"):
        if getattr(args, flag) not in KINDS:
            raise ValueError(f"--{flag} must be one of {list(KINDS)}, got {getattr(args, flag)!r}")
    if args.replicas < 1:
        raise ValueError(f"--replicas must be >= 1, got {args.replicas}")
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
