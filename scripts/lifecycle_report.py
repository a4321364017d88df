"""CDNOW figures of the lifecycle model next to BG/NBD (``ecomsim.lifecycle.report``), under stable keys.

Weeks 1-39 of the CDNOW sample are what the defaults were calibrated on
(``scripts/calibrate_lifecycle.py``); weeks 40-78 are a forecast. Visits are real
sessions of the reference world under the popularity ranking (``--visits sessions``,
default; about 3 minutes on one core) or the fitted emulator (``--visits emulator``,
seconds; entrants still drawn with real sessions unless ``--entry emulator``).

The churn section (``churn.*``) scores the shipped return-time model's 30-day churn
risk on ``--churn-customers`` new reference-world customers who get no coupon and no
message, next to the reference world's Bayes-optimal risk (which also sees the hidden state) and
to the best ranking gradient-boosted trees find from the same features
(``ecomsim.lifecycle.return_training``; about 4 minutes with the defaults).

    python scripts/lifecycle_report.py --json
    python scripts/lifecycle_report.py --visits emulator --seed 2 --replicas 8
    python scripts/lifecycle_report.py --sections churn --churn-customers 2000 --ceiling-customers 0
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
from ecomsim.lifecycle.return_training import CHURN_AUC_TARGET, churn_report
from ecomsim.lifecycle.sessions import SessionVisits


def known_section(name: str) -> None:
    if name not in ("cdnow", "churn"):
        raise ValueError(f"expected cdnow or churn, got {name!r}")


@dataclass
class Args:
    sections: tuple[str, ...] = option(("cdnow", "churn"), check=known_section)
    """what to report: cdnow (the repeat-buying fit and forecast), churn (the learned churn risk)"""
    visits: Literal["sessions", "emulator"] = "sessions"
    """what simulates return visits: real sessions of the reference world or the fitted emulator"""
    entry: Literal["sessions", "emulator"] = "sessions"
    """what draws the entrants' first visits"""
    seed: int = 1
    """seed of the simulated cohort"""
    replicas: int = option(8, min=1)
    """simulated customers per real customer"""
    churn_customers: int = option(5000, min=1)
    """held-out customers of the churn section"""
    ceiling_customers: int = option(20_000, min=0)
    """customers whose logs fit the churn section's observable ceiling (gradient-boosted trees); 0 for none"""
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

    report = {}
    if "cdnow" in args.sections:
        report.update(cdnow_report(simulator(args.visits), simulator(args.entry), seed=args.seed,
                                   replicas=args.replicas))
    if "churn" in args.sections:
        report.update(churn_report(args.churn_customers, seed=args.seed, ceiling_customers=args.ceiling_customers))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if "cdnow" in args.sections:
        print_cdnow(report, args)
    if "churn" in args.sections:
        print(f"churn risk, P(no visit in {report['churn.days']:.0f} days), {report['churn.customers']:.0f} new "
              f"reference-world customers, no coupon or message ({report['churn.rows']:.0f} decisions, "
              f"{report['churn.churn_rate']:.1%} without a visit):")
        print(f"  AUC learned {report['churn.auc_learned']:.4f}, Bayes-optimal {report['churn.auc_bayes']:.4f}, "
              f"ratio {report['churn.ratio']:.3f} (target >= {CHURN_AUC_TARGET})")
        if "churn.auc_observable_ceiling" in report:
            print(f"  best ranking from the same features (gradient-boosted trees, {args.ceiling_customers} customers): "
                  f"AUC {report['churn.auc_observable_ceiling']:.4f}; learned / it {report['churn.ratio_to_ceiling']:.3f}")
    return 0


def print_cdnow(report: dict, args: Args) -> None:
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


if __name__ == "__main__":
    run(main)
