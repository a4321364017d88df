"""Scripts as subprocesses with tiny budgets: they write their outputs and fail clearly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--timesteps", "512", "--num-envs", "8", "--sessions", "40", "--eval-sessions", "16", "--eval-every", "256",
        "--checkpoint-every", "256", "--no-progress", "--user-model", "reference",
        "--hyperparams", '{"n_steps": 16, "batch_size": 64}']


def run(script: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} {args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    proc = run("train_agent.py", *TINY, "--out", str(out), "--baselines", "random,popularity")
    assert "conversion_rate" in proc.stdout and "popularity" in proc.stdout
    return out


def test_train_agent_writes_outputs(trained: Path) -> None:
    for name in ("model.pt", "model.json", "checkpoint.pt", "state.json", "results.json", "report.png"):
        assert (trained / name).stat().st_size > 0, name
    res = json.loads((trained / "results.json").read_text())
    assert set(res["scores"]) == {"ppo", "random", "popularity"}
    conv = res["scores"]["ppo"]["sim"]["metrics"]["conversion_rate"]
    assert conv["low"] <= conv["value"] <= conv["high"] and conv["n"] == 40
    assert res["timesteps"] == 512 and [p["timesteps"] for p in res["learning_curve"]] == [256, 512]
    assert list((trained / "tb").glob("*/events.out.tfevents.*"))


def test_train_agent_resume(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    out.mkdir()
    for name in ("checkpoint.pt", "state.json"):
        (out / name).write_bytes((trained / name).read_bytes())
    args = [a if a != "512" else "1024" for a in TINY]
    run("train_agent.py", *args, "--out", str(out), "--resume", "--baselines", "")
    res = json.loads((out / "results.json").read_text())
    assert res["timesteps"] == 1024 and [p["timesteps"] for p in res["learning_curve"]] == [256, 512, 768, 1024]


def test_evaluate_json_with_trained_model(trained: Path) -> None:
    proc = run("evaluate.py", "--policy", f"ppo:{trained / 'model.pt'}", "--policy", "greedy", "--sessions", "30",
               "--num-envs", "10", "--json", "--user-model", "reference", "--channel", "web")
    out = json.loads(proc.stdout)
    assert out["env_options"]["channel"] == "web"
    for spec in (f"ppo:{trained / 'model.pt'}", "greedy"):
        for world in ("sim", "reference"):
            m = out["results"][spec][world]["metrics"]
            assert set(m) == {"ctr", "conversion_rate", "revenue_per_session", "session_length"}
            assert m["conversion_rate"]["n"] == 30


def test_evaluate_is_reproducible_and_prints_a_table() -> None:
    a = run("evaluate.py", "--policy", "random", "--sessions", "25", "--seed", "3", "--json", "--user-model", "reference")
    b = run("evaluate.py", "--policy", "random", "--sessions", "25", "--seed", "3", "--json", "--user-model", "reference")
    assert json.loads(a.stdout) == json.loads(b.stdout)
    t = run("evaluate.py", "--policy", "popularity", "--sessions", "20", "--user-model", "reference", "--sim-only")
    assert "popularity" in t.stdout and "conversion_rate" in t.stdout


def test_dqn_tiny_run(tmp_path: Path) -> None:
    args = [a for a in TINY]
    args[args.index("--hyperparams") + 1] = '{"learning_starts": 64, "buffer_size": 1000, "batch_size": 32}'
    run("train_agent.py", *args, "--algo", "dqn", "--out", str(tmp_path), "--baselines", "")
    assert json.loads((tmp_path / "results.json").read_text())["scores"]["dqn"]["sim"]["num_sessions"] == 40


def test_maskable_ppo_tiny_run_reports_out_of_stock_impressions(tmp_path: Path) -> None:
    """--algo maskable_ppo trains and scores on Recommend-v0 with inventory (the memory check knows the algorithm);
    every policy's results carry the share of its impressions that were out of stock."""
    pytest.importorskip("sb3_contrib")
    proc = run("train_agent.py", *TINY, "--algo", "maskable_ppo", "--env-options", '{"inventory": {}}',
               "--out", str(tmp_path), "--baselines", "popularity")
    assert "share of impressions out of stock: maskable_ppo" in proc.stdout
    res = json.loads((tmp_path / "results.json").read_text())
    for name in ("maskable_ppo", "popularity"):
        share = res["scores"][name]["sim"]["funnel"]["out_of_stock_shown"]
        assert 0.0 <= share <= 1.0


def test_inventory_tiny_run_scores_the_store_baselines(tmp_path: Path) -> None:
    args = ["--env-id", "ecomsim/Inventory-v0", "--user-model", "reference", "--timesteps", "80", "--num-envs", "2",
            "--stores", "2", "--tune-stores", "1", "--no-progress", "--env-options",
            '{"sessions_per_day": 20, "horizon_days": 20}', "--hyperparams", '{"n_steps": 20, "batch_size": 20}']
    run("train_agent.py", *args, "--out", str(tmp_path))
    res = json.loads((tmp_path / "results.json").read_text())
    assert set(res["scores"]) == {"ppo", "never_order", "base_stock_moving_average", "base_stock_behavior", "s_S_tuned"}
    assert all(m["profit_per_day"]["n"] == 2 for m in res["scores"].values())
    assert (tmp_path / "report.png").stat().st_size > 0


def test_evaluate_with_inventory_reports_the_scoring_stores_books() -> None:
    proc = run("evaluate.py", "--policy", "popularity", "--sessions", "60", "--user-model", "reference", "--sim-only",
               "--env-options", '{"inventory": {"sessions_per_day": 4}}', "--json")
    funnel = json.loads(proc.stdout)["results"]["popularity"]["sim"]["funnel"]
    assert funnel["store_days"] >= 5 and {"store_profit_per_day", "store_items_out"} <= set(funnel)


@pytest.mark.parametrize("script,args,message", [
    ("evaluate.py", ["--policy", "gredy", "--sessions", "5"], "Did you mean 'greedy'"),
    ("evaluate.py", ["--policy", "ppo:/no/such/model.pt", "--sessions", "5"], "ppo model '/no/such/model.pt' does not exist"),
    ("evaluate.py", ["--policy", "greedy", "--env-options", "[1]"], "--env-options must be a JSON object, got '[1]'"),
    ("evaluate.py", ["--policy", "greedy", "--env-options", '{"inventory": {"lead_time_days": -1}}'], "lead_time_days"),
    ("train_agent.py", ["--algo", "dqn", "--env-id", "ecomsim/Slate-v0"], "needs a Discrete action space"),
    ("train_agent.py", ["--env-id", "ecomsim/Slat-v0"], "Did you mean 'ecomsim/Slate-v0'"),
    ("train_agent.py", ["--hyperparams", '{"lr": 1}'], "unknown ppo hyperparameters"),
    ("train_agent.py", ["--resume", "--out", "/tmp/ecomsim-no-such-run"], "no checkpoint.pt"),
])
def test_errors_are_clear(script: str, args: list[str], message: str) -> None:
    proc = run(script, *args, check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
