"""Every script refuses bad input before any work, in one line naming the flag (or key), the value and what is valid.

Scripts run in-process through ``agents.cli.run`` (what ``__main__`` does), so each case costs no interpreter start.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.cli import run
from tests.agents.test_model_files import crafted_sb3_zip
from tests.scripts.test_cli import load

REF = ["--user-model", "reference"]


def fails(script: str, argv: list[str], capsys) -> str:
    """The one ``error: ...`` line of a refused command (exit status 2)."""
    module = load(script)
    with pytest.raises(SystemExit) as exc:
        run(lambda: module.main(argv))
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.fixture(scope="module")
def agent_dir(tmp_path_factory) -> Path:
    from agents.train import AgentTrainConfig, train

    out = tmp_path_factory.mktemp("agent")
    train(AgentTrainConfig(timesteps=128, num_envs=8, device="cpu", hyperparams={"n_steps": 16, "batch_size": 64},
                           eval_every=0, progress_bar=False, env_options={"user_model": "reference"}), out)
    return out


def test_evaluate_refuses_bad_models(agent_dir: Path, tmp_path: Path, capsys) -> None:
    target = tmp_path / "pwned"
    evil = crafted_sb3_zip(tmp_path / "model.zip", target)
    assert "is a Stable-Baselines3 zip: loading it unpickles its 'data' entry, and a crafted file runs code on load; " \
           "refused. Load it with --trust-pickle" in fails("evaluate", ["--policy", f"ppo:{evil}", "--sessions", "4"], capsys)
    assert not target.exists()
    assert f"agent model '{agent_dir}' is a directory; expected a model file (model.pt); it holds model.pt: pass " \
           f"'{agent_dir / 'model.pt'}'" in fails("evaluate", ["--policy", f"ppo:{agent_dir}", "--sessions", "4"], capsys)
    assert "is a ppo agent trained on ecomsim/Recommend-v0 (Discrete(20) actions), not ecomsim/Slate-v0; score it with " \
           "--env-id ecomsim/Recommend-v0" in fails("evaluate", ["--policy", f"ppo:{agent_dir / 'model.pt'}", "--env-id",
                                                             "ecomsim/Slate-v0", "--sessions", "4", *REF], capsys)
    assert "holds a ppo agent, not dqn" in fails("evaluate", ["--policy", f"dqn:{agent_dir / 'model.pt'}"], capsys)


@pytest.mark.parametrize("script, argv, message", [
    ("train_agent", ["--hyperparams", '{"gamma": 1.5}'], "AgentTrainConfig.hyperparams['gamma'] must be in [0, 1], got 1.5"),
    ("train_agent", ["--hyperparams", '{"learning_rate": -0.001}'],
     "AgentTrainConfig.hyperparams['learning_rate'] must be in (0, inf), got -0.001"),
    ("train_agent", ["--hyperparams", '{"batch_size": 4096}'],
     "AgentTrainConfig.hyperparams['batch_size'] must be <= n_steps * num_envs = 64 * 32 = 2048"),
    ("train_agent", ["--hyperparams", '{"n_epochs": 2.5}'], "AgentTrainConfig.hyperparams['n_epochs'] must be an integer, got 2.5"),
    ("train_agent", ["--algo", "dqn", "--hyperparams", '{"train_freq": [4, "week"]}'],
     "AgentTrainConfig.hyperparams['train_freq'] must be an integer or [N >= 1, \"step\" or \"episode\"], got [4, 'week']"),
    ("train_agent", ["--hyperparams", '{"learning_rat": 1}'], "unknown ppo hyperparameters ['learning_rat']. Did you mean 'learning_rate'?"),
    ("train_agent", ["--hyperparams", "[1]"], "--hyperparams must be a JSON object, got '[1]'"),
    ("train_agent", ["--out", __file__], f"argument --out: expected a directory, got the existing file '{__file__}'"),
    ("train_agent", ["--num-envs", "1000000000", "--hyperparams", '{"n_steps": 16, "batch_size": 64}', "--out",
                     "/tmp/ecomsim-never-written", *REF], "num_envs=1,000,000,000 needs about"),
    ("train_gan", ["--resume", "--checkpoint", "/tmp/ecomsim-no-such.pt"],
     "argument --resume: no checkpoint at --checkpoint '/tmp/ecomsim-no-such.pt'; train without --resume first"),
    ("train_gan", ["--resume", "--checkpoint", ""], "argument --resume: needs a --checkpoint file to continue from"),
    ("train_gan", ["--holdout", "1.5"], "argument --holdout: expected a share in (0, 1), got 1.5"),
    ("train_gan", ["--catalog-out", "/tmp"], "argument --catalog-out: expected a file to write, got the directory '/tmp'"),
    ("train_gan", ["--data", "/tmp"], "argument --data: expected a file, got the directory '/tmp'"),
    ("train_gan", ["--data", "refrence"], "argument --data: expected 'reference', 'obd' or a catalog .npz file, got 'refrence'"),
    ("train_behavior", ["--out", "/tmp"], "argument --out: expected a file to write, got the directory '/tmp'"),
    ("train_behavior", ["--out", "/tmp/b.json"], "argument --out: expected a weights file ending in .pt"),
    ("train_behavior", ["--resume", "--checkpoint", "/tmp/ecomsim-no-such.pt"], "argument --resume: no checkpoint at"),
    ("train_behavior", ["--data", "obd:random/kids"], "argument --data must be one of ['reference', 'obd:random/all'"),
    ("catalog_report", ["--png", "/tmp"], "argument --png: expected a file to write, got the directory '/tmp'"),
    ("benchmark", ["--seconds", "0"], "argument --seconds: expected a number > 0 (seconds per measurement), got 0.0"),
    ("evaluate", ["--policy", "random", "--num-envs", "1000000000", "--sessions", "1000000000", *REF],
     "--num-envs=1,000,000,000 needs about"),
    ("reference_experiment", ["--num-envs", "1000000000", "--sessions", "1000000000"], "--num-envs=1,000,000,000 needs about"),
])
def test_scripts_refuse_bad_input_in_one_line(script, argv, message, capsys):
    err = fails(script, argv, capsys)
    assert message in err, err


def test_train_agent_refuses_to_overwrite_a_run(agent_dir: Path, capsys) -> None:
    err = fails("train_agent", ["--out", str(agent_dir), "--timesteps", "256", *REF], capsys)
    assert f"output directory '{agent_dir}' already holds a run (checkpoint.pt, model.pt); continue it with --resume" in err
    state = json.loads((agent_dir / "state.json").read_text())
    assert state["num_timesteps"] == 128  # untouched
