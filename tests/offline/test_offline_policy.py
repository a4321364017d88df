"""The safe model format of offline policies: round trip, and every refusal names the file and the problem."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from agents.evaluation import evaluate, make_eval_env
from agents.registry import policy_factory
from agents.offline import (
    QNetwork,
    QNetworkSpec,
    load_network,
    load_offline_policy,
    offline_policy_factory,
    save_offline_policy,
)
from ecomsim.cards import sha256_file
from ecomsim.envs import EcomVectorEnv
from ecomsim.registration import env_kwargs

REF = env_kwargs("ecomsim/Recommend-v0", user_model="reference")
OBS_DIM = EcomVectorEnv(num_envs=1, **REF).single_observation_space.shape[0]


def _save(tmp_path, **spec_kw):
    torch.manual_seed(0)
    spec = QNetworkSpec(input_dim=OBS_DIM, num_actions=20, hidden_units=(16, 8), **spec_kw)
    net = QNetwork(spec)
    if spec.observation_scaler == "standard":
        with torch.no_grad():
            net.obs_mean.uniform_(-1, 1)
            net.obs_std.uniform_(0.5, 2)
    path = save_offline_policy(net, tmp_path / "m", algorithm="test", env_id="ecomsim/Recommend-v0", env_options=REF,
                               extra={"dataset": {"id": "none"}})
    return net, path


def _rewrite(path, **changes) -> None:
    card = json.loads(path.read_text())
    card.update(changes)
    path.write_text(json.dumps(card))


def test_round_trip_and_online_scoring(tmp_path) -> None:
    net, path = _save(tmp_path, num_critics=2, observation_scaler="standard")
    loaded, card = load_network(path.parent)  # the folder works as well as the card
    obs = np.random.default_rng(0).normal(size=(32, OBS_DIM)).astype(np.float32)
    with torch.inference_mode():
        np.testing.assert_array_equal(loaded(torch.as_tensor(obs)).numpy(), net(torch.as_tensor(obs)).numpy())
    assert card["weights"]["sha256"] == sha256_file(path.parent / "q_network.pt")
    assert set(torch.load(path.parent / "q_network.pt", weights_only=True)) >= {"obs_mean", "obs_std", "critics.1.4.weight"}
    policy = load_offline_policy(path, env_id="ecomsim/Recommend-v0")
    res = evaluate(policy, make_eval_env(REF, 16), 64, seed=1)
    assert res.num_sessions == 64
    env = EcomVectorEnv(num_envs=4, **REF)
    o, _ = env.reset(seed=2)
    policy.reset(env.core, np.random.default_rng(0))
    np.testing.assert_array_equal(policy.act(o), policy.q_values(o).argmax(axis=1))
    make = offline_policy_factory(path, env_id="ecomsim/Recommend-v0")
    assert make() is make() and make().name == "offline"  # loaded once, the stateless policy handed out


def test_refuses_tampered_weights(tmp_path) -> None:
    _, path = _save(tmp_path)
    weights = path.parent / "q_network.pt"
    state = torch.load(weights, weights_only=True)
    state["critics.0.0.weight"] += 1.0
    torch.save(state, weights)
    with pytest.raises(ValueError, match=r"q_network.pt' has sha256 [0-9a-f]{64}, but offline-policy card .* says .*changed"):
        load_network(path)


def test_refuses_a_card_for_another_env(tmp_path) -> None:
    _, path = _save(tmp_path)
    _rewrite(path, env_id="ecomsim/Slate-v0")
    with pytest.raises(ValueError, match="was trained for env id 'ecomsim/Slate-v0', not 'ecomsim/Recommend-v0'"):
        load_offline_policy(path, env_id="ecomsim/Recommend-v0")
    _, path = _save(tmp_path)
    policy = load_offline_policy(path)
    other = EcomVectorEnv(num_envs=2, **env_kwargs("ecomsim/Recommend-v0", user_model="reference", num_candidates=10))
    with pytest.raises(ValueError, match="expects observations of 491 features and 20 actions, the env has 261 and 10"):
        policy.reset(other.core, np.random.default_rng(0))
    _rewrite(path, env_options=dict(REF, num_candidates=20))
    with pytest.raises(ValueError, match="trained with num_candidates=20, the env has num_candidates=10"):
        load_offline_policy(path).reset(other.core, np.random.default_rng(0))


def test_refuses_pickles_wrong_shapes_and_bad_cards(tmp_path) -> None:
    _, path = _save(tmp_path)
    weights = path.parent / "q_network.pt"
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"critics.0.0.weight": Payload()}, weights)  # code that would run on unpickling
    _rewrite(path, weights={"file": "q_network.pt", "sha256": sha256_file(weights)})
    with pytest.raises(ValueError, match="not a plain tensor file loadable with weights_only=True"):
        load_network(path)
    assert not marker.exists()
    torch.save({"critics.0.0.weight": torch.zeros(3, 3)}, weights)
    _rewrite(path, weights={"file": "q_network.pt", "sha256": sha256_file(weights)})
    with pytest.raises(ValueError, match=r"does not fit the card's network: differing \(name, shape\)"):
        load_network(path)
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    _rewrite(path, weights={"file": "q_network.pt", "sha256": sha256_file(weights)})
    with pytest.raises(ValueError, match="not a plain tensor file"):
        load_network(path)
    card = json.loads(path.read_text())
    del card["network"]
    path.write_text(json.dumps(card))
    with pytest.raises(ValueError, match=r"lacks keys \['network'\]"):
        load_network(path)
    _rewrite(path, network={"input_dim": OBS_DIM, "num_actions": 20, "hidden_units": [16], "activation": "sigmoid"})
    with pytest.raises(ValueError, match="network.activation must be one of .* got 'sigmoid'"):
        load_network(path)
    _rewrite(path, format="something-else")
    with pytest.raises(ValueError, match="has format 'something-else', expected 'ecomsim-offline-q/1'"):
        load_network(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_network(path)
    with pytest.raises(FileNotFoundError, match="no offline-policy card at"):
        load_network(tmp_path / "nowhere")
    _, path = _save(tmp_path)
    (path.parent / "q_network.pt").unlink()
    with pytest.raises(FileNotFoundError, match="weights file .*q_network.pt' named by offline-policy card"):
        load_network(path)
    with pytest.raises(ValueError, match="out_dir .* is a file"):
        save_offline_policy(QNetwork(QNetworkSpec(4, 2)), path, algorithm="x", env_id="e", env_options={})


def test_evaluate_script_scores_an_offline_policy(tmp_path, capsys) -> None:
    """``scripts/evaluate.py --policy offline:PATH``: the offline-trained policy is scored like any other."""
    from agents.cli import run
    from tests.scripts.test_cli import load

    _, path = _save(tmp_path)
    evaluate_script = load("evaluate")
    argv = ["--policy", f"offline:{path}", "--policy", "random", "--sessions", "40", "--num-envs", "8",
            "--user-model", "reference", "--sim-only", "--json"]
    with pytest.raises(SystemExit) as exc:
        run(lambda: evaluate_script.main(argv))
    assert exc.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["results"][f"offline:{path}"]["sim"]["num_sessions"] == 40
    with pytest.raises(ValueError, match="was trained for env id 'ecomsim/Recommend-v0', not 'ecomsim/Slate-v0'"):
        policy_factory(f"offline:{path}", env_id="ecomsim/Slate-v0")
