"""Calibrate the lifecycle parameters to a cohort's calibration window (simulated method of moments).

Only the calibration window of the data is used: :func:`calibration_view` drops
every transaction after it before anything is computed, so holdout figures are a
true forecast.

**Moments** (each a distance in [0, 1] between the simulated and the real cohort):

* ``repeat_tv``: total variation between the shares of customers with 0, 1, ..., 7+ repeat transactions;
* ``ipt_ks``: Kolmogorov-Smirnov distance between the inter-purchase times (days);
* ``recency_tv``: total variation between the joint distributions of repeat transactions (0, 1, 2, 3+) and
  weeks since the last purchase at the window's end (< 4, 4-13, 13-26, >= 26): how many buyers went quiet,
  the signal of churn;
* ``curve_nmae``: mean absolute error of the weekly cumulative repeat-transaction curve over the window,
  relative to the data's total at its end;
* ``total_error``: relative error of the repeat transactions in the window (the curve's end point).

**Objective**: their sum. **Search**: Nelder-Mead over the logarithms of the
``CALIBRATED`` parameters, every evaluation on the same seed (common random numbers:
each customer draws from her own stream, so a small parameter change moves few
customers and the objective is nearly smooth). The visits come from a
:class:`~ecomsim.lifecycle.visits.VisitSimulator`, normally the emulator fitted to
the session world under the popularity policy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from ecomsim.data.cdnow import repeat_histogram
from ecomsim.data.transactions import RepeatBuying
from ecomsim.lifecycle.cohort import SimulatedCohort, cohort_entrants, ks_distance, simulate_cohort
from ecomsim.lifecycle.entry import Entrants
from ecomsim.lifecycle.model import Lifecycle
from ecomsim.lifecycle.params import LifecycleParams
from ecomsim.lifecycle.visits import VisitSimulator

CALIBRATED = ("visit_rate", "visit_shape", "churn_rate", "churn_shape", "churn_after_purchase", "intent_need",
              "need_regrowth_days", "return_need", "revisit_boost", "revisit_days")
MOMENTS = ("repeat_tv", "ipt_ks", "recency_tv", "curve_nmae", "total_error")
RECENCY_WEEKS = (4, 13, 26)


def calibration_view(data: RepeatBuying) -> RepeatBuying:
    """The cohort restricted to its calibration window (holdout transactions dropped)."""
    keep = data.day < data.calibration_days
    return RepeatBuying.from_days(data.customer[keep], data.day[keep], data.num_customers, data.calibration_days, 0,
                                  data.amount[keep])


def recency_cells(s: RepeatBuying) -> np.ndarray:
    """``(13,)`` shares of customers by (repeat transactions 0 / 1 / 2 / 3+, weeks since the last purchase)."""
    weeks_quiet = s.T - s.t_x
    band = np.digitize(weeks_quiet, RECENCY_WEEKS)
    cell = np.where(s.x == 0, 0, 1 + (np.minimum(s.x, 3) - 1) * (len(RECENCY_WEEKS) + 1) + band)
    return np.bincount(cell, minlength=1 + 3 * (len(RECENCY_WEEKS) + 1)) / len(cell)


def moments(sim: SimulatedCohort, data: RepeatBuying) -> dict[str, float]:
    """The calibration distances (module docstring) of a simulated cohort against the data's window."""
    s = sim.summary
    weeks = data.calibration_weeks
    sim_curve = s.cumulative_repeats()[:weeks] / sim.replicas
    real_curve = data.cumulative_repeats()[:weeks]
    return {
        "repeat_tv": 0.5 * float(np.abs(repeat_histogram(s.x) - repeat_histogram(data.x)).sum()),
        "ipt_ks": ks_distance(s.inter_purchase_days("calibration"), data.inter_purchase_days("calibration")),
        "recency_tv": 0.5 * float(np.abs(recency_cells(s) - recency_cells(data)).sum()),
        "curve_nmae": float(np.mean(np.abs(sim_curve - real_curve)) / max(real_curve[-1], 1)),
        "total_error": float(abs(sim_curve[-1] / max(real_curve[-1], 1) - 1.0)),
    }


def with_values(base: LifecycleParams, values: np.ndarray) -> LifecycleParams:
    """``base`` with the ``CALIBRATED`` parameters set to ``values``."""
    return dataclasses.replace(base, **{name: float(v) for name, v in zip(CALIBRATED, values)})


@dataclass
class CalibrationResult:
    """The best parameters found, their moments, and every evaluation (values, objective)."""

    params: LifecycleParams
    moments: dict[str, float]
    objective: float
    history: list[tuple[list[float], float]] = field(default_factory=list)


def evaluate(params: LifecycleParams, sim: VisitSimulator, entrants: Entrants, window: RepeatBuying,
             replicas: int) -> tuple[float, dict[str, float]]:
    """Objective and moments of ``params`` on the calibration ``window`` (from :func:`calibration_view`)."""
    cohort = simulate_cohort(Lifecycle(sim.catalog, params), sim, entrants, window.calibration_days, 0, replicas)
    m = moments(cohort, window)
    return float(sum(m.values())), m


def calibrate(sim: VisitSimulator, data: RepeatBuying, start: LifecycleParams, seed: int = 0, replicas: int = 4,
              max_evals: int = 300, log=None, entry_sim: VisitSimulator | None = None,
              entrants: Entrants | None = None) -> CalibrationResult:
    """Nelder-Mead over ``log(CALIBRATED)`` from ``start`` (module docstring); ``log(i, values, objective, moments)``
    is called after every evaluation when given.

    The entrants (``replicas`` per real customer) are drawn once, from ``seed``, with ``entry_sim`` (default
    ``sim``), unless given: their selection by a first purchase does not depend on the parameters, so real
    sessions can draw them even when ``sim`` is the emulator.
    """
    window = calibration_view(data)
    if entrants is None:
        entrants = cohort_entrants(Lifecycle(sim.catalog, start), entry_sim or sim, window.first_day,
                                   np.random.default_rng(seed), replicas)
    history: list[tuple[list[float], float]] = []
    best: dict = {"objective": np.inf}

    def objective(z: np.ndarray) -> float:
        values = np.exp(z)
        try:
            params = with_values(start, values)
        except ValueError:
            return 1e3  # outside the valid range (a step of the simplex)
        value, m = evaluate(params, sim, entrants, window, replicas)
        history.append(([float(v) for v in values], value))
        if value < best["objective"]:
            best.update(objective=value, params=params, moments=m)
        if log is not None:
            log(len(history), values, value, m)
        return value

    z0 = np.log([getattr(start, name) for name in CALIBRATED])
    optimize.minimize(objective, z0, method="Nelder-Mead",
                      options={"maxfev": max_evals, "xatol": 1e-3, "fatol": 1e-4, "adaptive": True})
    return CalibrationResult(params=best["params"], moments=best["moments"], objective=best["objective"],
                             history=history)
