"""The privacy report and the explanation checks as subprocesses with tiny budgets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)


@pytest.mark.slow
def test_privacy_report_tiny(tmp_path):
    pytest.importorskip("opacus", reason="private training needs the optional extra 'private' (opacus)")
    proc = run("privacy_report.py", "--json", "--sessions", "1500", "--slate-sessions", "300", "--epsilons", "3",
               "--dp-epochs", "1", "--batch-sessions", "128", "--agreement-sessions", "200", "--num-envs", "50",
               "--mia-sessions", "100", "--skip-shipped-mia", "--out-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(rep["models"]) == {"none", "eps_3"}
    dp = rep["models"]["eps_3"]
    assert dp["epsilon"] <= 3.0 and 0 < dp["delta"] < 1e-3 and 0.4 < dp["membership"]["auc"] < 0.6
    assert set(dp["agreement"]["conversion"]) == {"random", "popularity", "click_greedy", "greedy"}
    assert rep["gan"]["exact_copies"] == 0 and rep["gan"]["dcr_ratio"] > 0
    card = json.loads((tmp_path / "behavior_eps_3.json").read_text())
    assert card["privacy"]["epsilon"] == dp["epsilon"] and "NOT covered" in card["privacy"]["calibration"]


def test_privacy_report_bad_flags():
    proc = run("privacy_report.py", "--epsilons", "1,x")
    assert proc.returncode == 2 and proc.stderr == "error: argument --epsilons: expected a number, got 'x'\n"
    proc = run("privacy_report.py", "--epsilons", "3,0")
    assert proc.returncode == 2 and proc.stderr == "error: argument --epsilons: expected a number > 0, got 0.0\n"
    proc = run("privacy_report.py", "--dp-epochs", "0")
    assert proc.returncode == 2 and proc.stderr == "error: argument --dp-epochs: expected an integer >= 1, got '0'\n"
    proc = run("explain_checks.py", "--impressions", "5")
    assert proc.returncode == 2 and proc.stderr == "error: argument --impressions: expected an integer >= 10, got '5'\n"


@pytest.mark.slow
def test_explain_checks_tiny():
    pytest.importorskip("captum", reason="explanations need the optional extra 'explain' (captum)")
    proc = run("explain_checks.py", "--json", "--impressions", "20", "--over-budget", "40", "--importance-steps", "20")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout.strip().splitlines()[-1])
    assert rep["completeness"]["max_gap"] <= 1e-3 and rep["price_sign"]["over_budget_impressions"] == 40
    assert rep["price_sign"]["negative_share"]["purchase"] >= 0.9


@pytest.mark.slow
def test_train_behavior_dp_epsilon_writes_epsilon_and_delta_into_the_card(tmp_path):
    pytest.importorskip("opacus", reason="private training needs the optional extra 'private' (opacus)")
    out = tmp_path / "private.pt"
    proc = run("train_behavior.py", "--dp-epsilon", "3", "--sessions", "1500", "--slate-sessions", "300",
               "--dp-epochs", "1", "--dp-batch-sessions", "128", "--out", str(out), "--log-dir", "", "--checkpoint", "")
    assert proc.returncode == 0, proc.stderr
    card = json.loads(out.with_suffix(".json").read_text())
    p = card["privacy"]
    assert 0 < p["epsilon"] <= 3.0 and 0 < p["delta"] < 1e-3 and p["unit"] == "session"
    assert "NOT covered" in p["calibration"] and "--dp-epsilon 3" in card["train"]["command"]
    assert card["test_metrics"]["click_auc"] > 0.6  # it learned something
    from ecomsim.shoppers.behavior import load_behavior_model

    assert load_behavior_model(path=out).schema == card["feature_schema"]  # an env can use it


def test_train_behavior_dp_flags_are_checked():
    proc = run("train_behavior.py", "--dp-epsilon", "0")
    assert proc.returncode == 2 and proc.stderr == "error: argument --dp-epsilon: expected a number > 0, got 0.0\n"
    proc = run("train_behavior.py", "--dp-epsilon", "3")
    assert proc.returncode == 2 and "give --out for the private model" in proc.stderr
    proc = run("train_behavior.py", "--dp-epsilon", "3", "--out", "/tmp/x.pt", "--dp-delta", "2")
    assert proc.returncode == 2 and "--dp-delta: expected a number in (0, 1), got 2.0" in proc.stderr
