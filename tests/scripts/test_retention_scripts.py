"""Retention-v0 through the scripts, tiny budgets: PPO via train_agent.py, the baselines via retention_study.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.scripts.test_scripts import run

SMALL = ["--user-model", "reference", "--horizon-days", "90"]


def test_train_agent_on_retention_writes_scores_and_curve(tmp_path: Path) -> None:
    run("train_agent.py", "--env-id", "ecomsim/Retention-v0", "--user-model", "reference", "--timesteps", "128",
        "--num-envs", "2", "--hyperparams", '{"n_steps": 64, "batch_size": 64}', "--customers", "12",
        "--tune-customers", "6", "--env-options", '{"horizon_days": 90}', "--no-progress", "--out", str(tmp_path))
    for name in ("model.pt", "model.json", "results.json", "report.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    res = json.loads((tmp_path / "results.json").read_text())
    assert set(res["scores"]) == {"ppo", "never_offer", "always_10", "churn_rule", "myopic"}
    ppo = res["scores"]["ppo"]
    assert ppo["profit_per_customer"]["n"] == 12 and "retention_day_90" in ppo and "retention_day_180" not in ppo
    assert res["curve_days"][-1] <= 90 and len(res["retention_curve"]["ppo"]) == len(res["curve_days"])
    logged = res["training_customers"]  # ecom/profit_per_customer, ecom/retention_day_<d> of the training customers
    assert logged and logged[0]["customers"] >= 1 and 0.0 <= logged[0]["retention_day_90"] <= 1.0
    assert list((tmp_path / "tb").glob("*/events.out.tfevents.*"))


def test_dqn_trains_on_retention_and_its_saved_agent_is_scored(tmp_path: Path) -> None:
    run("train_agent.py", "--algo", "dqn", "--env-id", "ecomsim/Retention-v0", "--user-model", "reference",
        "--timesteps", "96", "--num-envs", "4", "--hyperparams", '{"learning_starts": 32, "buffer_size": 500}',
        "--customers", "6", "--tune-customers", "4", "--env-options", '{"horizon_days": 60}', "--no-progress",
        "--out", str(tmp_path))
    card = json.loads((tmp_path / "model.json").read_text())
    assert card["algo"] == "dqn" and card["policy"] == "StateDQNPolicy" and card["policy_kwargs"] == {"hidden": 64}
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["scores"]["dqn"]["profit_per_customer"]["n"] == 6
    paired = res["paired"]["dqn"]  # against the best baseline, on the same customers
    assert paired["baseline"] in res["scores"] and paired["difference"]["n"] == 6
    proc = run("evaluate.py", "--env-id", "ecomsim/Retention-v0", "--policy", f"dqn:{tmp_path / 'model.pt'}",
               "--sessions", "4", "--sim-only", "--user-model", "reference", "--json")
    assert json.loads(proc.stdout)["results"]["sim"]["scores"][f"dqn:{tmp_path / 'model.pt'}"]["profit_per_customer"][
        "n"] == 4


def test_retention_study_json() -> None:
    proc = run("retention_study.py", "--customers", "10", "--tune-customers", "5", "--json", *SMALL)
    out = json.loads(proc.stdout)
    assert set(out["scores"]) == {"never_offer", "always_10", "churn_rule", "myopic"}
    assert out["tuning"]["myopic_strategy"] in ("popularity", "relevance", "price_fit", "margin")
    assert out["scores"]["never_offer"]["coupon_cost_per_customer"]["value"] == 0.0


@pytest.mark.parametrize("args, message", [
    (["--algo", "maskable_ppo", "--env-id", "ecomsim/Retention-v0"], "trains with algo in ['ppo', 'dqn']"),
    (["--env-id", "ecomsim/Retention-v0", "--env-options", '{"horizon_days": 0}'], "horizon_days"),
    (["--env-id", "ecomsim/Retention-v0", "--env-options", '{"strategies": ["popularty"]}'], "Did you mean 'popularity'"),
])
def test_train_agent_retention_errors_are_clear(args: list[str], message: str) -> None:
    proc = run("train_agent.py", *args, check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_evaluate_scores_retention_policies_in_both_worlds() -> None:
    proc = run("evaluate.py", "--env-id", "ecomsim/Retention-v0", "--policy", "never_offer", "--policy", "myopic",
               "--sessions", "6", "--json")
    out = json.loads(proc.stdout)
    assert set(out["results"]) == {"sim", "reference"}
    for world in out["results"].values():
        assert list(world["scores"]) == ["never_offer", "myopic"]
        assert world["scores"]["myopic"]["profit_per_customer"]["n"] == 6


@pytest.mark.parametrize("args, message", [
    (["--policy", "greedy"], "must be one of ['never_offer', 'always_10', 'churn_rule', 'myopic'], ppo:PATH or dqn:PATH"),
    (["--policy", "never_offer", "--channel", "web"], "--channel is not an option"),
])
def test_evaluate_retention_errors_are_clear(args: list[str], message: str) -> None:
    proc = run("evaluate.py", "--env-id", "ecomsim/Retention-v0", "--sessions", "2", *args, check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
