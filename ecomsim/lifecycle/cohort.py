"""Simulate a cohort of customers over the calendar and compare it with a real one.

:func:`cohort_entrants` draws the cohort's customers at their trial purchases
(``ecomsim.lifecycle.entry``) on the real cohort's first-purchase days;
:func:`simulate_cohort` runs every visit until ``end_day``, under the
lifecycle equations with a :class:`~ecomsim.lifecycle.visits.VisitSimulator`
(real sessions or the emulator); no coupons, no messages (the shop of the data
sent none that we know of). The purchases are summarised by the same code as the
real data (:class:`ecomsim.data.transactions.RepeatBuying`).

Fit figures (:func:`compare`): total variation between the repeat-transaction
histograms (0, 1, ..., 7+), the Kolmogorov-Smirnov distance between inter-purchase
times, and the mean absolute percentage error of the weekly cumulative
repeat-transaction curve. A simulated cohort may be ``replicas`` times larger than
the real one (each first-purchase day repeated): its curve is divided by
``replicas``, so sampling noise shrinks without changing what is compared.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecomsim.data.cdnow import repeat_histogram
from ecomsim.data.transactions import RepeatBuying
from ecomsim.lifecycle.entry import Entrants, draw_entrants
from ecomsim.lifecycle.model import Customers, Lifecycle
from ecomsim.lifecycle.returns import NEVER
from ecomsim.lifecycle.visits import VisitSimulator


@dataclass
class SimulatedCohort:
    """A simulated cohort: its repeat-buying summary, the customers' final state, and visit counts.

    ``replicas``: how many simulated customers stand for one real customer.
    """

    summary: RepeatBuying
    customers: Customers
    visits: int
    replicas: int


def cohort_entrants(lifecycle: Lifecycle, sim: VisitSimulator, first_day: np.ndarray, rng: np.random.Generator,
                    replicas: int = 1) -> Entrants:
    """Entrants for a cohort whose trial purchases fell on ``first_day`` ``(N,)``, each day ``replicas`` times."""
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ValueError(f"replicas must be a positive integer, got {replicas!r}")
    return draw_entrants(lifecycle.population, np.repeat(np.asarray(first_day, dtype=np.int64), replicas), sim, rng)


def simulate_cohort(lifecycle: Lifecycle, sim: VisitSimulator, entrants: Entrants, calibration_days: int,
                    holdout_days: int, replicas: int = 1) -> SimulatedCohort:
    """Simulate ``entrants`` (from :func:`cohort_entrants`) up to the end of the holdout window.

    ``holdout_days = 0`` simulates the calibration window only; ``replicas`` as given to :func:`cohort_entrants`.
    """
    first = entrants.first_day
    end = calibration_days + holdout_days  # days [0, end) are simulated
    cust = lifecycle.new_customers(entrants, end - 1)
    buyers, days, amounts = [np.arange(len(first))], [first], [entrants.trial.revenue]
    visits = 0
    while True:
        rows = np.flatnonzero(cust.alive & (cust.next_day < end))
        if not len(rows):
            break
        step = lifecycle.visit(cust, rows, sim, until=end - 1)
        visits += len(rows)
        bought = step.outcome.purchased
        buyers.append(rows[bought])
        days.append(step.day[bought])
        amounts.append(step.outcome.revenue[bought])
    customer, day, amount = np.concatenate(buyers), np.concatenate(days), np.concatenate(amounts)
    order = np.lexsort((day, customer))
    summary = RepeatBuying.from_days(customer[order], day[order], len(first), calibration_days,
                                     max(holdout_days, 0), amount[order])
    return SimulatedCohort(summary=summary, customers=cust, visits=visits, replicas=replicas)


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov distance (sup of the ECDF difference) of two samples."""
    a, b = np.sort(np.asarray(a, dtype=np.float64)), np.sort(np.asarray(b, dtype=np.float64))
    if len(a) == 0 or len(b) == 0:
        return 1.0
    grid = np.concatenate([a, b])
    fa = np.searchsorted(a, grid, side="right") / len(a)
    fb = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.max(np.abs(fa - fb)))


def mape(pred: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute percentage error over entries with ``actual > 0``."""
    pred, actual = np.asarray(pred, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    keep = actual > 0
    return float(np.mean(np.abs(pred[keep] - actual[keep]) / actual[keep]))


def compare(sim: SimulatedCohort, data: RepeatBuying) -> dict[str, float]:
    """Fit figures of a simulated cohort against the data (module docstring); weeks are 1-based in the keys."""
    s = sim.summary
    cal_weeks = data.calibration_weeks
    out = {
        "repeat_tv_calibration": 0.5 * float(np.abs(repeat_histogram(s.x) - repeat_histogram(data.x)).sum()),
        "ipt_ks_calibration": ks_distance(s.inter_purchase_days("calibration"), data.inter_purchase_days("calibration")),
    }
    sim_curve = s.cumulative_repeats() / sim.replicas
    real_curve = data.cumulative_repeats()
    weeks = min(len(sim_curve), len(real_curve))
    out["curve_mape_calibration"] = mape(sim_curve[:cal_weeks], real_curve[:cal_weeks])
    out[f"cumulative_week{cal_weeks}"] = float(sim_curve[cal_weeks - 1])
    if weeks > cal_weeks:
        out["curve_mape_holdout"] = mape(sim_curve[cal_weeks:weeks], real_curve[cal_weeks:weeks])
        out[f"cumulative_week{weeks}"] = float(sim_curve[weeks - 1])
        out[f"cumulative_week{weeks}_error"] = float(sim_curve[weeks - 1] / real_curve[weeks - 1] - 1.0)
        out["repeat_tv_holdout"] = 0.5 * float(np.abs(repeat_histogram(s.x_holdout) - repeat_histogram(data.x_holdout)).sum())
    return out


def never_returns(c: Customers) -> np.ndarray:
    """``(N,)`` customers with no visit left in the simulated horizon (churned or past it)."""
    return ~c.alive | (c.next_day == NEVER)
