"""The CDNOW figures of the lifecycle model next to BG/NBD's, under stable keys (``cdnow.*``).

:func:`cdnow_report` fits BG/NBD on the CDNOW sample's calibration weeks 1-39,
simulates the same cohort with the lifecycle defaults (visits as real sessions of
the reference world under the popularity ranking, or the emulator) from its
first-purchase days through week 78, and compares both with the data: weeks 1-39 as
fit, weeks 40-78 as forecast (nothing of them was used to calibrate). Churn: the
AUC of "any repeat purchase in weeks 40-78" for our activity score
(``ecomsim.lifecycle.activity``) and for BG/NBD's ``P(alive)`` and conditional
expectation. The env half of the lifecycle work adds ``churn.*`` keys (the reference
world's churn risk against its Bayes-optimal AUC) beside these.

Keys (all floats unless noted): ``cdnow.data.*`` (what the data show),
``cdnow.sim.*`` (our simulation), ``cdnow.bgnbd.*`` (the reference model),
``cdnow.target.*`` (bools: the issue's targets met) and ``cdnow.settings.*``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ecomsim.data.cdnow import CALIBRATION_WEEKS, HOLDOUT_WEEKS, cdnow_cohort, repeat_histogram
from ecomsim.lifecycle.activity import ActivityScore, holdout_auc
from ecomsim.lifecycle.bgnbd import fit_bgnbd
from ecomsim.lifecycle.calibration import calibration_view
from ecomsim.lifecycle.cohort import cohort_entrants, compare, mape, simulate_cohort
from ecomsim.lifecycle.model import Lifecycle
from ecomsim.lifecycle.params import LifecycleParams
from ecomsim.lifecycle.visits import VisitSimulator

TARGETS = {"repeat_tv_calibration": 0.05, "ipt_ks_calibration": 0.10, "cumulative_week78_error": 0.10}


def bgnbd_figures(name: str = "sample") -> dict[str, Any]:
    """BG/NBD fitted on weeks 1-39 and its forecast of weeks 40-78 (``cdnow.bgnbd.*`` keys)."""
    data = cdnow_cohort(name)
    window = calibration_view(data)
    model, ll = fit_bgnbd(window.x, window.t_x, window.T)
    weeks = CALIBRATION_WEEKS + HOLDOUT_WEEKS
    curve = model.cohort_curve(data.first_day, weeks)
    real = data.cumulative_repeats()
    return {
        "cdnow.bgnbd.r": model.r, "cdnow.bgnbd.alpha": model.alpha, "cdnow.bgnbd.a": model.a, "cdnow.bgnbd.b": model.b,
        "cdnow.bgnbd.log_likelihood": ll,
        f"cdnow.bgnbd.cumulative_week{CALIBRATION_WEEKS}": float(curve[CALIBRATION_WEEKS - 1]),
        f"cdnow.bgnbd.cumulative_week{weeks}": float(curve[-1]),
        f"cdnow.bgnbd.cumulative_week{weeks}_error": float(curve[-1] / real[-1] - 1.0),
        "cdnow.bgnbd.curve_mape_calibration": mape(curve[:CALIBRATION_WEEKS], real[:CALIBRATION_WEEKS]),
        "cdnow.bgnbd.curve_mape_holdout": mape(curve[CALIBRATION_WEEKS:], real[CALIBRATION_WEEKS:]),
        "cdnow.bgnbd.p_alive_auc": holdout_auc(model.p_alive(window.x, window.t_x, window.T), data),
        "cdnow.bgnbd.expected_auc": holdout_auc(
            model.conditional_expected(float(HOLDOUT_WEEKS), window.x, window.t_x, window.T), data),
    }


def cdnow_report(sim: VisitSimulator, entry_sim: VisitSimulator | None = None, params: LifecycleParams | None = None,
                 seed: int = 1, replicas: int = 8, name: str = "sample") -> dict[str, Any]:
    """All ``cdnow.*`` figures (module docstring).

    Args:
        sim: simulates the return visits (real sessions or the emulator).
        entry_sim: draws the entrants' first visits (default ``sim``).
        params: the lifecycle parameters (default: the shipped, calibrated ones).
        seed: seeds the simulated cohort (the calibration searched on seed 0).
        replicas: simulated customers per real customer.
    """
    data = cdnow_cohort(name)
    lifecycle = Lifecycle(sim.catalog, params)
    entrants = cohort_entrants(lifecycle, entry_sim or sim, data.first_day, np.random.default_rng(seed), replicas)
    cohort = simulate_cohort(lifecycle, sim, entrants, data.calibration_days, data.holdout_days, replicas)
    fit = compare(cohort, data)
    weeks = CALIBRATION_WEEKS + HOLDOUT_WEEKS
    out: dict[str, Any] = {
        "cdnow.data.customers": data.num_customers,
        "cdnow.data.repeat_transactions_calibration": int(data.x.sum()),
        "cdnow.data.repeat_transactions_holdout": int(data.x_holdout.sum()),
        f"cdnow.data.cumulative_week{weeks}": int(data.cumulative_repeats()[-1]),
        "cdnow.data.active_holdout_share": float(np.mean(data.x_holdout > 0)),
        "cdnow.data.repeat_histogram": repeat_histogram(data.x).round(4).tolist(),
        "cdnow.sim.repeat_histogram": repeat_histogram(cohort.summary.x).round(4).tolist(),
        "cdnow.sim.active_holdout_share": float(np.mean(cohort.summary.x_holdout > 0)),
        "cdnow.sim.visits_per_customer": cohort.visits / len(entrants),
        "cdnow.sim.first_visits_per_entrant": float(entrants.attempts.mean()),
    }
    out.update({f"cdnow.sim.{k}": v for k, v in fit.items()})
    out["cdnow.sim.churn_auc"] = holdout_auc(ActivityScore(cohort.summary, seed=seed).predict(data), data)
    out.update(bgnbd_figures(name))
    out["cdnow.target.repeat_tv_calibration"] = fit["repeat_tv_calibration"] <= TARGETS["repeat_tv_calibration"]
    out["cdnow.target.ipt_ks_calibration"] = fit["ipt_ks_calibration"] <= TARGETS["ipt_ks_calibration"]
    out[f"cdnow.target.cumulative_week{weeks}"] = abs(fit[f"cumulative_week{weeks}_error"]) <= TARGETS[
        "cumulative_week78_error"]
    out["cdnow.target.curve_mape_holdout_vs_bgnbd"] = fit["curve_mape_holdout"] <= out["cdnow.bgnbd.curve_mape_holdout"]
    out["cdnow.target.churn_auc_vs_bgnbd_p_alive"] = out["cdnow.sim.churn_auc"] >= out["cdnow.bgnbd.p_alive_auc"]
    out.update({"cdnow.settings.visits": type(sim).__name__, "cdnow.settings.entry": type(entry_sim or sim).__name__,
                "cdnow.settings.seed": seed, "cdnow.settings.replicas": replicas})
    return out
