"""Calibration moments and search, the CDNOW targets (slow), and the two scripts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecomsim.lifecycle.calibration import MOMENTS, calibrate, calibration_view, moments, recency_cells
from ecomsim.lifecycle.cohort import SimulatedCohort, ks_distance, mape
from ecomsim.lifecycle.emulator import load_visit_emulator
from ecomsim.lifecycle.params import LifecycleParams
from tests.lifecycle.test_data import needs_lifetimes

ROOT = Path(__file__).resolve().parents[2]


def test_distances():
    assert ks_distance(np.arange(10), np.arange(10)) == 0.0
    assert ks_distance(np.zeros(5), np.ones(5)) == 1.0
    assert mape(np.array([1.0, 3.0, 5.0]), np.array([0.0, 2.0, 4.0])) == pytest.approx((0.5 + 0.25) / 2)


@needs_lifetimes
def test_the_window_hides_the_holdout_and_the_data_fits_itself():
    from ecomsim.data.cdnow import cdnow_cohort

    data = cdnow_cohort()
    window = calibration_view(data)
    assert window.x_holdout.sum() == 0 and window.day.max() < 273 and len(window.weekly_repeats) == 39
    assert np.array_equal(window.x, data.x) and np.allclose(window.t_x, data.t_x)
    assert recency_cells(window).sum() == pytest.approx(1.0)
    own = SimulatedCohort(summary=window, customers=None, visits=0, replicas=1)
    assert moments(own, window) == {name: 0.0 for name in MOMENTS}


@needs_lifetimes
def test_search_runs_and_keeps_its_best():
    from ecomsim.data.cdnow import cdnow_cohort

    emulator = load_visit_emulator()
    result = calibrate(emulator, cdnow_cohort(), LifecycleParams(), seed=0, replicas=1, max_evals=4)
    assert len(result.history) == 4
    assert result.objective == min(value for _, value in result.history)
    assert set(result.moments) == set(MOMENTS)


@needs_lifetimes
def test_report_script_json_keys():
    out = subprocess.run([sys.executable, "scripts/lifecycle_report.py", "--visits", "emulator", "--entry", "emulator",
                          "--replicas", "1", "--sections", "cdnow", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    for key in ("cdnow.sim.repeat_tv_calibration", "cdnow.sim.ipt_ks_calibration", "cdnow.sim.cumulative_week78_error",
                "cdnow.sim.curve_mape_holdout", "cdnow.bgnbd.curve_mape_holdout", "cdnow.sim.churn_auc",
                "cdnow.bgnbd.p_alive_auc", "cdnow.bgnbd.r", "cdnow.target.cumulative_week78"):
        assert key in report, key
    assert report["cdnow.bgnbd.r"] == pytest.approx(0.243, abs=6e-4)


def test_report_script_churn_section():
    out = subprocess.run([sys.executable, "scripts/lifecycle_report.py", "--sections", "churn", "--churn-customers",
                          "300", "--ceiling-customers", "300", "--json"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert not any(k.startswith("cdnow.") for k in report)
    for key in ("churn.auc_learned", "churn.auc_bayes", "churn.ratio", "churn.auc_observable_ceiling",
                "churn.target.auc_ratio"):
        assert key in report, key
    assert 0.5 < report["churn.auc_learned"] <= 1 and 0.5 < report["churn.auc_bayes"] <= 1
    assert report["churn.ratio"] == pytest.approx(report["churn.auc_learned"] / report["churn.auc_bayes"])


def test_scripts_reject_bad_flags():
    for script, flags, message in (
            ("scripts/lifecycle_report.py", ["--visits", "real"],
             "error: argument --visits: expected one of ['sessions', 'emulator'], got 'real'"),
            ("scripts/lifecycle_report.py", ["--replicas", "0"], "error: argument --replicas: expected an integer >= 1, got '0'"),
            ("scripts/lifecycle_report.py", ["--sections", "cdnow,churm"], "expected cdnow or churn, got 'churm'"),
            ("scripts/train_return_model.py", ["--out", "/tmp/x.npz"], "expected a weights file ending in .pt"),
            ("scripts/calibrate_lifecycle.py", ["--max-evals", "0"],
             "error: argument --max-evals: expected an integer >= 1, got '0'")):
        out = subprocess.run([sys.executable, script, *flags], cwd=ROOT, capture_output=True, text=True, timeout=120,
                             env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        assert out.returncode == 2 and message in out.stderr, out.stderr


@pytest.mark.slow
@needs_lifetimes
def test_cdnow_targets_with_real_sessions():
    """The issue's CDNOW targets with the shipped defaults, visits as real sessions, a seed the search never saw.

    Tolerances are the targets themselves (TV <= 0.05, KS <= 0.10, week-78 total within 10%); with 4 simulated
    customers per real one the week-78 total varies by about 3% between seeds (``scripts/lifecycle_report.py``).
    """
    from ecomsim.lifecycle.report import cdnow_report
    from ecomsim.lifecycle.sessions import SessionVisits

    report = cdnow_report(SessionVisits(), seed=2, replicas=4)
    assert report["cdnow.sim.repeat_tv_calibration"] <= 0.05
    assert report["cdnow.sim.ipt_ks_calibration"] <= 0.10
    assert abs(report["cdnow.sim.cumulative_week78_error"]) <= 0.10
    assert report["cdnow.sim.churn_auc"] > max(0.7, report["cdnow.bgnbd.p_alive_auc"])


@pytest.mark.slow
@needs_lifetimes
def test_calibration_script_runs_end_to_end_with_tiny_budgets():
    out = subprocess.run([sys.executable, "scripts/calibrate_lifecycle.py", "--emulator",
                          "ecomsim/assets/visit_emulator.json", "--max-evals", "2", "--replicas", "1", "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=1200,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert set(report["params"]) >= {"visit_rate", "churn_rate"} and report["search"]["evaluations"] == 2


@pytest.mark.slow
@needs_lifetimes
def test_calibration_script_on_a_users_transaction_table(tmp_path):
    from ecomsim.data.cdnow import load_cdnow

    tx = load_cdnow()
    keep = tx.customer < 400
    dates = tx.start + np.array(tx.day[keep], dtype="timedelta64[D]")
    path = tmp_path / "shop.csv"
    import pandas as pd

    pd.DataFrame({"customer_id": tx.customer_ids[tx.customer[keep]], "date": dates,
                  "amount": tx.amount[keep]}).to_csv(path, index=False)
    out = subprocess.run([sys.executable, "scripts/calibrate_lifecycle.py", "--transactions", str(path),
                          "--calibration-days", "273", "--max-evals", "2", "--replicas", "1", "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=1200,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["customers"] == 400 and report["shipped_defaults_reproduced"] is False
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"customer_id": [1, 1], "date": ["2024-01-01", "2024-01-05"], "amount": [5.0, -1.0]}).to_csv(bad, index=False)
    out = subprocess.run([sys.executable, "scripts/calibrate_lifecycle.py", "--transactions", str(bad)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2 and "row 3 column 'amount' has -1.0" in out.stderr
