"""Calibrate the lifecycle defaults to the CDNOW sample's calibration weeks 1-39 and ship the visit emulator.

Reproduces the defaults of the ``[CDNOW fit]`` parameters of
``ecomsim.lifecycle.params.LifecycleParams`` and ``ecomsim/assets/visit_emulator.json``
from a fixed seed (one thread; about 25 minutes on one core):

1. **Visit emulator.** Real sessions of the reference world under the popularity
   ranking (``ecomsim.lifecycle.sessions.SessionVisits``) on randomised contexts, half
   of them customers selected by a first purchase; the emulator
   (``ecomsim.lifecycle.emulator``) is fitted to them and written to the assets.
2. **Entrants.** The cohort's customers are drawn with real sessions (shoppers whose
   first visit bought, ``ecomsim.lifecycle.entry``) on the CDNOW cohort's first-purchase
   days, ``--replicas`` per real customer, once.
3. **Search.** Nelder-Mead over the calibrated parameters from ``START``, the visits
   emulated, the objective the sum of the moment distances of
   ``ecomsim.lifecycle.calibration`` on weeks 1-39 only.
4. **Re-level with real sessions.** The emulator is a few percent off real sessions
   for these customers; ``visit_rate`` is scaled (secant search) so that the cohort
   simulated with real sessions makes as many repeat purchases in weeks 1-39 as the data.
5. **Confirm.** The final parameters with real sessions, on fresh entrants (another
   seed): the fit figures of weeks 1-39 (the forecast of weeks 40-78 is in
   ``scripts/lifecycle_report.py``, which never feeds back into this script).

    python scripts/calibrate_lifecycle.py
    python scripts/calibrate_lifecycle.py --emulator shipped --max-evals 100 --json

``--emulator shipped`` (or a card path) reuses a fitted emulator instead of step 1.

**Your own customers**: ``--transactions FILE.csv`` (columns ``customer_id, date,
amount``; validated by ``ecomsim.data.transactions.read_transactions``) calibrates
the same parameters to the customers who first bought in the first
``--calibration-days`` days of the file (default: all of it), with the shipped
emulator unless ``--emulator fit``; the result is printed (``--json``: under
``params``), the shipped defaults are left alone.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np

from agents.cli import existing_file, option, output_file, parse_args, pin_threads, run
from ecomsim.data.cdnow import cdnow_cohort
from ecomsim.data.transactions import RepeatBuying, read_transactions
from ecomsim.lifecycle.calibration import CALIBRATED, calibrate, calibration_view, moments
from ecomsim.lifecycle.cohort import cohort_entrants, simulate_cohort
from ecomsim.lifecycle.emulator import fit_emulator, load_visit_emulator
from ecomsim.lifecycle.model import Lifecycle
from ecomsim.lifecycle.params import LifecycleParams
from ecomsim.lifecycle.sessions import SessionVisits

ASSET = Path(__file__).resolve().parents[1] / "ecomsim" / "assets" / "visit_emulator.json"
# Round values near where exploratory runs ended; the search starts here.
START = {"visit_rate": 0.04, "visit_shape": 0.7, "churn_rate": 0.0015, "churn_shape": 0.7, "churn_after_purchase": 0.35,
         "intent_need": 0.2, "need_regrowth_days": 60.0, "return_need": 0.3, "revisit_boost": 0.2, "revisit_days": 3.0}
SIGNIFICANT = 4  # digits the shipped defaults keep


def rounded(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT}g}")


def relevel(params: LifecycleParams, sessions: SessionVisits, entrants, window, replicas: int,
            log) -> LifecycleParams:
    """Scale ``visit_rate`` so the real-session cohort matches the data's repeat transactions in the window."""
    target = window.x.sum()

    def gap(log_scale: float) -> float:
        p = dataclasses.replace(params, visit_rate=params.visit_rate * float(np.exp(log_scale)))
        s = simulate_cohort(Lifecycle(sessions.catalog, p), sessions, entrants, window.calibration_days, 0, replicas)
        total = s.summary.x.sum() / replicas
        log(f"  re-level: visit_rate {p.visit_rate:.5g} -> repeat transactions {total:.1f} (data {target})")
        return float(np.log(total / target))

    a, fa = 0.0, gap(0.0)
    b = -fa  # repeat purchases scale about one for one with the visit rate
    fb = gap(b)
    for _ in range(3):
        if abs(fb) < 0.005 or fb == fa:
            break
        a, fa, b = b, fb, b - fb * (b - a) / (fb - fa)
        fb = gap(b)
    return dataclasses.replace(params, visit_rate=params.visit_rate * float(np.exp(b)))


@dataclass
class Args:
    seed: int = 0
    """seeds the emulator's sessions and the entrants (the confirmation uses seed + 1)"""
    emulator_sessions: int = option(100_000, min=1)
    """real sessions the emulator is fitted on"""
    emulator: str | None = None
    """'fit' (default for CDNOW), 'shipped' (default with --transactions) or a card path"""
    transactions: str | None = option(None, check=existing_file)
    """calibrate to this CSV (customer_id, date, amount) instead of CDNOW"""
    calibration_days: int | None = option(None, min=7)
    """with --transactions: days of the calibration window (default: all of the file)"""
    replicas: int = option(4, min=1)
    """simulated customers per real customer in the search"""
    max_evals: int = option(600, min=1)
    """Nelder-Mead evaluations"""
    out: str = option(str(ASSET), check=output_file)
    """where the fitted emulator card goes"""
    json: bool = False
    """print the result as JSON"""
    threads: int = option(1, min=1)
    """torch and BLAS threads (one: the machine is shared)"""

    def __post_init__(self) -> None:
        if self.emulator not in (None, "fit", "shipped"):
            existing_file(self.emulator)  # a card path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if args.json else print
    t0 = time.time()
    if args.transactions is None:
        data = cdnow_cohort()
    else:
        tx = read_transactions(args.transactions)
        days = int(tx.day.max()) + 1 if args.calibration_days is None else args.calibration_days
        if days < 7:
            raise ValueError(f"--transactions {args.transactions!r} spans {days} days; calibration needs at least 7 (one week)")
        data = RepeatBuying.from_transactions(tx, days, 0)
    window = calibration_view(data)  # the calibration window only, from here on
    sessions = SessionVisits()
    choice = args.emulator or ("fit" if args.transactions is None else "shipped")
    if choice == "fit":
        emulator = fit_emulator(sessions, args.emulator_sessions, np.random.default_rng(args.seed))
        emulator.save(args.out)
        log(f"emulator fitted on {args.emulator_sessions} sessions, written to {args.out} ({time.time() - t0:.0f}s)")
    else:
        emulator = load_visit_emulator(None if choice == "shipped" else choice)
    start = dataclasses.replace(LifecycleParams(), **START)

    def progress(i, values, objective, m):
        if i % 25 == 0:
            log(f"  eval {i}: objective {objective:.4f} " + " ".join(f"{k} {v:.3f}" for k, v in m.items()))

    entrants = cohort_entrants(Lifecycle(sessions.catalog, start), sessions, window.first_day,
                               np.random.default_rng(args.seed), args.replicas)
    log(f"entrants drawn with real sessions: {len(entrants)} ({time.time() - t0:.0f}s)")
    result = calibrate(emulator, window, start, replicas=args.replicas, max_evals=args.max_evals, log=progress,
                       entrants=entrants)
    log(f"search done: objective {result.objective:.4f} ({time.time() - t0:.0f}s)")
    params = relevel(result.params, sessions, entrants, window, args.replicas, log)
    params = dataclasses.replace(params, **{n: rounded(getattr(params, n)) for n in CALIBRATED})
    fresh = cohort_entrants(Lifecycle(sessions.catalog, params), sessions, window.first_day,
                            np.random.default_rng(args.seed + 1), args.replicas)
    confirm = simulate_cohort(Lifecycle(sessions.catalog, params), sessions, fresh, window.calibration_days, 0,
                              args.replicas)
    shipped = LifecycleParams()
    report = {
        "params": {n: getattr(params, n) for n in CALIBRATED},
        "data": "CDNOW sample" if args.transactions is None else args.transactions,
        "customers": window.num_customers,
        "shipped_defaults_reproduced": (args.transactions is None
                                        and all(getattr(shipped, n) == getattr(params, n) for n in CALIBRATED)),
        "search": {"objective": result.objective, "moments": result.moments, "evaluations": len(result.history)},
        "confirm_real_sessions": moments(confirm, window),
        "seconds": round(time.time() - t0, 1),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"calibrated on {report['data']} ({report['customers']} customers); parameters"
          + (" (paste into LifecycleParams when they differ):" if args.transactions is None else ":"))
    for n in CALIBRATED:
        mark = "" if getattr(shipped, n) == getattr(params, n) else f"   (shipped {getattr(shipped, n)})"
        print(f"    {n}: float = {getattr(params, n)!r}{mark}")
    print(f"shipped defaults reproduced: {report['shipped_defaults_reproduced']}")
    confirm_text = ", ".join(f"{k} {v:.4f}" for k, v in report["confirm_real_sessions"].items())
    print(f"calibration window, real sessions, fresh entrants: {confirm_text}")
    return 0


if __name__ == "__main__":
    run(main)
