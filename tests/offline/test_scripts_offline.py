"""The offline scripts as subprocesses with tiny budgets: outputs written, bad flags refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from agents.cli import parse_args
from tests.scripts.test_cli import load, parse_fails

ROOT = Path(__file__).resolve().parents[2]


def run(script: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} {args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.mark.parametrize("name", ["export_minari", "train_offline"])
def test_datasets_path_is_the_flag_else_minaris_variable_else_refused(name, tmp_path, monkeypatch, capsys) -> None:
    Args = load(name).Args
    out = ["--out", str(tmp_path / "o")] if name == "train_offline" else []
    monkeypatch.delenv("MINARI_DATASETS_PATH", raising=False)
    assert "error: --datasets-path is required (or set MINARI_DATASETS_PATH)" in parse_fails(Args, out, capsys)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "env"))
    (tmp_path / "env").mkdir()
    assert parse_args(Args, out).datasets_path == str(tmp_path / "env")
    assert parse_args(Args, [*out, "--datasets-path", str(tmp_path)]).datasets_path == str(tmp_path)  # the flag wins
    assert "--datasets-path is required" in parse_fails(Args, [*out, "--datasets-path", ""], capsys)  # '' is not replaced
    (tmp_path / "file").write_text("x")
    assert "--datasets-path must be" in parse_fails(Args, [*out, "--datasets-path", str(tmp_path / "file")], capsys)


def test_offline_flags_checked_at_parse_time(tmp_path, capsys) -> None:
    assert parse_args(load("score_offline").Args, ["--card", "c.json", "--baselines", ""]).baselines == ()
    assert parse_args(load("score_offline").Args, ["--card", "c.json"]).baselines == (
        "random", "popularity", "click_greedy", "greedy")
    err = parse_fails(load("score_offline").Args, ["--card", "c.json", "--baselines", "greedy,gredy"], capsys)
    assert err.startswith("error: argument --baselines: expected one of ['random', 'popularity', 'click_greedy', 'greedy'], "
                          "got 'gredy'. Did you mean 'greedy'?"), err
    err = parse_fails(load("export_minari").Args, ["--datasets-path", str(tmp_path), "--scores", "purchase"], capsys)
    assert err.startswith("error: argument --scores: expected one of"), err
    ope = load("ope_benchmark").Args
    assert parse_args(ope, ["--sizes", "200,1000", "--no-oracle"]) == ope(sizes=(200, 1000), oracle=False)
    assert "error: --sizes must hold at least one log size" in parse_fails(ope, ["--sizes", ""], capsys)
    assert "argument --sizes: expected an integer >= 50, got '10'" in parse_fails(ope, ["--sizes", "10"], capsys)
    assert "--plot must be a file path, got the directory" in parse_fails(ope, ["--plot", str(tmp_path)], capsys)
    train = load("train_offline").Args
    a = parse_args(train, ["--datasets-path", str(tmp_path), "--out", str(tmp_path / "o"), "--hidden", "128,128", "--no-scaler"])
    assert (a.hidden, a.scaler, a.network) == ((128, 128), False, "candidate")
    assert "argument --hidden: expected an integer >= 1, got '0'" in parse_fails(
        train, ["--datasets-path", str(tmp_path), "--out", "o", "--hidden", "64,0"], capsys)


def test_export_minari_writes_a_dataset(tmp_path) -> None:
    pytest.importorskip("minari", reason='minari is not installed: pip install -e ".[offline]"')
    proc = run("export_minari.py", "--datasets-path", str(tmp_path), "--user-model", "reference", "--sessions", "12",
               "--num-envs", "4", "--seed", "5", "--json")
    out = json.loads(proc.stdout)
    assert out["dataset_id"] == "ecomsim/recommend-reference-logging-v0" and out["episodes"] == 12
    assert (tmp_path / "ecomsim" / "recommend-reference-logging-v0" / "data" / "main_data.hdf5").is_file()
    again = run("export_minari.py", "--datasets-path", str(tmp_path), "--user-model", "reference", "--sessions", "12", check=False)
    assert again.returncode == 2 and "already exists" in again.stderr and "Traceback" not in again.stderr
    bad = run("export_minari.py", "--datasets-path", str(tmp_path), "--env-id", "ecomsim/Slate-v0", "--dataset-id", "x/y-v0",
              check=False)
    assert bad.returncode == 2 and "one-item-per-step id" in bad.stderr
    bad = run("export_minari.py", "--datasets-path", str(tmp_path), "--sessions", "0", check=False)
    assert bad.returncode == 2 and bad.stderr == "error: argument --sessions: expected an integer >= 1, got '0'\n"


def test_ope_benchmark_tiny_json_and_plot(tmp_path) -> None:
    png = tmp_path / "ope.png"
    proc = run("ope_benchmark.py", "--user-model", "reference", "--max-steps", "3", "--sizes", "200", "--truth-sessions", "100",
               "--resamples", "20", "--num-envs", "32", "--plot", str(png), "--json")
    out = json.loads(proc.stdout)
    rows = out["results"]
    assert {r["estimator"] for r in rows} == {"IPS", "SNIPS", "DR", "DR-oracle-q"}
    assert {r["target"] for r in rows} == {"logging", "uniform", "soft_greedy", "greedy", "click_greedy", "popularity"}
    for r in rows:
        assert r["steps"] >= 200 and r["truth"]["n"] == 100
        assert r["estimate"]["low"] <= r["estimate"]["value"] <= r["estimate"]["high"]
    logging = [r for r in rows if r["target"] == "logging" and r["estimator"] == "IPS"][0]
    assert logging["effective_sessions"] == pytest.approx(logging["sessions"])  # weights all 1
    assert png.stat().st_size > 10_000
    bad = run("ope_benchmark.py", "--sizes", "1000,abc", check=False)
    assert bad.returncode == 2 and bad.stderr == "error: argument --sizes: expected an integer, got 'abc'\n"


def test_score_offline_and_train_offline_without_d3rlpy(tmp_path) -> None:
    from agents.offline import QNetwork, QNetworkSpec, save_offline_policy
    from ecomsim.envs import EcomVectorEnv

    env = EcomVectorEnv(num_envs=1, user_model="reference")
    torch.manual_seed(0)
    net = QNetwork(QNetworkSpec(input_dim=env.single_observation_space.shape[0], num_actions=20, hidden_units=(8,)))
    card = save_offline_policy(net, tmp_path / "m", algorithm="test", env_id="ecomsim/Recommend-v0",
                               env_options={"mode": "recommend", "slate_size": 1, "user_model": "reference"},
                               extra={"dataset": {"ecomsim": {"logging_policy": {"kind": "softmax", "scores": "greedy",
                                                                                  "temperature": 0.5, "epsilon": 0.1}}}})
    proc = run("score_offline.py", "--card", str(card), "--sessions", "40", "--num-envs", "8", "--baselines", "greedy",
               "--sim-only", "--json")
    out = json.loads(proc.stdout)
    assert set(out["results"]) == {"cql", "logging", "greedy"}
    assert out["results"]["cql"]["sim"]["num_sessions"] == 40
    (tmp_path / "m" / "q_network.pt").write_bytes(b"tampered")
    bad = run("score_offline.py", "--card", str(card), "--sessions", "4", check=False)
    assert bad.returncode == 2 and "sha256" in bad.stderr and "Traceback" not in bad.stderr
    try:
        import d3rlpy  # noqa: F401
    except ImportError:
        proc = run("train_offline.py", "--datasets-path", str(tmp_path), "--out", str(tmp_path / "o"), check=False)
        assert proc.returncode == 2 and "d3rlpy is not importable in this interpreter" in proc.stderr
