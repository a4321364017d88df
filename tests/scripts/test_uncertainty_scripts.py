"""The uncertainty experiment's ``--ensemble`` and the ensemble builder's logging options: they reach what they name."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import ecomsim  # noqa: F401  (registers the ids)
from agents.cli import parse_args
from agents.uncertainty import ARMS, arm_options
from ecomsim.data.reference_logs import LoggingPolicy
from ecomsim.shoppers.ensemble import save_ensemble
from ecomsim.shoppers.weights import load_net, shipped_weights_path
from tests.scripts.test_bad_input import fails
from tests.scripts.test_cli import load


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory) -> str:
    """Two members: the shipped network with seeded noise on its weights (distinct models, no training)."""
    net, card = load_net(shipped_weights_path())
    members = []
    for j in range(2):
        m = copy.deepcopy(net)
        gen = torch.Generator().manual_seed(j)
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.3 * torch.randn(p.shape, generator=gen) * p.std())
        members.append(m)
    path = tmp_path_factory.mktemp("ens") / "thin.pt"
    save_ensemble(members, path, {"hidden": card["hidden"], "feature_schema": card["feature_schema"], "members": []})
    return str(path)


def test_ensemble_reaches_every_arms_env(ensemble):
    args = parse_args(load("uncertainty_experiment").Args, ["--ensemble", ensemble])
    assert args.ensemble == ensemble
    for arm in ARMS:
        assert arm_options(arm, 1.0, 1, args.ensemble)["ensemble"] == ensemble
        assert "ensemble" not in arm_options(arm, 1.0, 1)  # the default stays the shipped ensemble, unnamed
    # the member arm's env runs that file's member 1: its outcomes differ from the shipped ensemble's member 1
    rewards = {}
    for name, options in (("given", arm_options("member", 0.0, 1, ensemble)),
                          ("shipped", arm_options("member", 0.0, 1))):
        env = gym.make_vec("ecomsim/Recommend-v0", num_envs=64, max_steps=8, **options)
        env.reset(seed=3)
        total = 0.0
        for _ in range(24):
            total += float(env.step(np.zeros(64, dtype=np.int64))[1].sum())
        rewards[name] = total
        env.close()
    assert rewards["given"] != rewards["shipped"]


def test_ensemble_refuses_bad_paths(ensemble, tmp_path, capsys):
    argv = ["--sections", "gap", "--timesteps", "8", "--sessions", "4", "--out-dir", str(tmp_path / "runs")]
    missing = tmp_path / "none.pt"
    assert fails("uncertainty_experiment", [*argv, "--ensemble", str(missing)], capsys) == \
        f"error: argument --ensemble: behaviour ensemble file '{missing}' does not exist; build it with " \
        "`python scripts/train_ensemble.py`\n"
    card = tmp_path / "thin.json"
    card.write_text("{}")
    assert fails("uncertainty_experiment", [*argv, "--ensemble", str(card)], capsys) == \
        f"error: argument --ensemble: expected 'default' or an ensemble weights file ending in .pt, got '{card}'\n"
    broken = tmp_path / "broken.pt"
    broken.write_bytes(Path(ensemble).read_bytes()[:-8])
    broken.with_suffix(".json").write_text(Path(ensemble).with_suffix(".json").read_text())
    assert "error: argument --ensemble: behaviour ensemble weights" in fails(
        "uncertainty_experiment", [*argv, "--ensemble", str(broken)], capsys)
    assert not (tmp_path / "runs").exists()  # refused before any work


def test_logging_options_name_the_logging_policy(capsys):
    args = load("train_ensemble").Args
    default = parse_args(args, [])
    assert default.logging == ("mix",) and default.logging_policy("mix") == LoggingPolicy()  # the shipped build's logs
    biased = parse_args(args, ["--logging", "popularity,greedy", "--logging-epsilon", "0.02"])
    assert biased.logging == ("popularity", "greedy")
    assert biased.logging_policy("popularity") == LoggingPolicy(mix=(("popularity", 1.0),), epsilon=0.02)
    assert "error: argument --logging: expected one of ['mix', 'random', 'popularity', 'click_greedy', 'greedy'], " \
           "got 'greedyy'" in fails("train_ensemble", ["--logging", "greedyy"], capsys)
    assert fails("train_ensemble", ["--logging-epsilon", "0"], capsys) == \
        "error: argument --logging-epsilon: expected a share in (0, 1], got 0.0\n"


@pytest.mark.slow
def test_biased_ensemble_build(tmp_path):
    """A tiny build on greedy-only logs: the card says how it was logged and scores every member on the mix's logs."""
    out = tmp_path / "greedy.pt"
    assert load("train_ensemble").main(["--members", "2", "--sessions", "400", "--slate-sessions", "0", "--logging",
                                        "greedy", "--logging-epsilon", "0.02", "--max-epochs", "2", "--out",
                                        str(out)]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    logged = card["training_data"]["description"]["parts"][0]["logging_policy"]
    assert logged == {"mix": {"greedy": 1.0}, "temperature": 0.25, "epsilon": 0.02}
    assert [m["logging"] for m in card["members"]] == ["greedy", "greedy"]
    for member in card["members"]:
        mixed, own = member["test_metrics_mix_logs"], member["test_metrics"]
        assert 0.5 < mixed["click_auc"] <= 1 and mixed["num_impressions"] != own["num_impressions"]
    env = gym.make("ecomsim/Recommend-v0", ensemble=str(out), ensemble_member=1, max_steps=4)
    env.reset(seed=0)
    assert np.isfinite(env.step(0)[1])
    env.close()
