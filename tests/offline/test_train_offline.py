"""A tiny d3rlpy DiscreteCQL run exported to the safe format (only where d3rlpy imports: its own venv)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

d3rlpy = pytest.importorskip(
    "d3rlpy", reason="d3rlpy is not installed in this interpreter (it pins gymnasium==1.0.0: it lives in its own venv, "
                     "see docs/offline_rl.md); run this file with that venv's python")

from agents.offline import load_network, save_offline_policy  # noqa: E402
from agents.offline_train import CQLTrainConfig, to_qnetwork, train_cql  # noqa: E402


def _transitions(s: int = 600, d: int = 12, m: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """Episodes of 6 steps where action ``argmax(obs[:m])`` pays 1: something a Q-network can pick up."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(s, d)).astype(np.float32)
    actions = rng.integers(0, m, size=s)
    rewards = (actions == obs[:, :m].argmax(axis=1)).astype(np.float32)
    ends = (np.arange(s) % 6) == 5
    return {"observations": obs, "actions": actions, "rewards": rewards,
            "terminals": (ends & (np.arange(s) % 12 == 5)).astype(np.float32),
            "timeouts": (ends & (np.arange(s) % 12 == 11)).astype(np.float32)}


@pytest.mark.slow
def test_tiny_cql_run_exports_to_the_safe_format(tmp_path) -> None:
    tr = _transitions()
    config = CQLTrainConfig(steps=300, batch_size=32, hidden_units=(16,), target_update_interval=50, seed=0, gamma=0.5)
    net, summary = train_cql(tr, 4, config)
    assert summary["epochs"] and np.isfinite(summary["epochs"][-1]["loss"])
    path = save_offline_policy(net, tmp_path / "cql", algorithm="d3rlpy DiscreteCQL", env_id="ecomsim/Recommend-v0",
                               env_options={"mode": "recommend"}, extra={"algorithm_config": config.to_card(), "training": summary})
    loaded, card = load_network(path)
    assert card["network"]["hidden_units"] == [16] and card["network"]["observation_scaler"] == "standard"
    obs = torch.as_tensor(tr["observations"])
    with torch.inference_mode():
        np.testing.assert_array_equal(loaded(obs).numpy(), net(obs).numpy())
    # the same seed trains the same network
    again, _ = train_cql(tr, 4, config)
    for a, b in zip(net.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b)


@pytest.mark.slow
def test_candidate_scorer_exports_and_is_equivariant(tmp_path) -> None:
    # 12 features = context 4 + 4 candidates x 2: one scorer shared over the candidates (no scaler: its
    # per-feature statistics differ a little between candidate slots, which would break exact equivariance)
    tr = _transitions()
    config = CQLTrainConfig(steps=200, batch_size=32, hidden_units=(8,), target_update_interval=50, network="candidate",
                            context_dim=4, observation_scaler=None)
    net, _ = train_cql(tr, 4, config)  # to_qnetwork inside checks the copy against d3rlpy's predictions
    assert net.spec.kind == "candidate" and net.critics[0][0].weight.shape == (8, 6)
    path = save_offline_policy(net, tmp_path / "c", algorithm="d3rlpy DiscreteCQL", env_id="ecomsim/Recommend-v0",
                               env_options={"mode": "recommend"})
    loaded, card = load_network(path)
    assert card["network"]["kind"] == "candidate" and card["network"]["context_dim"] == 4
    obs = torch.as_tensor(tr["observations"][:50])
    perm = torch.tensor([2, 0, 3, 1])
    shuffled = torch.cat([obs[:, :4], obs[:, 4:].reshape(50, 4, 2)[:, perm].reshape(50, 8)], dim=1)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(shuffled), loaded(obs)[:, perm])  # permuting candidates permutes Q
    with pytest.raises(ValueError, match="network='candidate' needs context_dim"):
        CQLTrainConfig(network="candidate")


@pytest.mark.slow
def test_to_qnetwork_refuses_a_mismatched_spec() -> None:
    from agents.offline import QNetworkSpec

    tr = _transitions()
    algo = d3rlpy.algos.DiscreteCQLConfig(encoder_factory=d3rlpy.models.VectorEncoderFactory(hidden_units=[8]),
                                          batch_size=16).create(device="cpu:0")
    dataset = d3rlpy.dataset.MDPDataset(tr["observations"], tr["actions"].reshape(-1, 1), tr["rewards"].reshape(-1, 1),
                                        tr["terminals"], tr["timeouts"], action_space=d3rlpy.constants.ActionSpace.DISCRETE,
                                        action_size=4)
    algo.build_with_dataset(dataset)
    with pytest.raises(ValueError, match="do not match the spec"):
        to_qnetwork(algo, QNetworkSpec(input_dim=12, num_actions=4, hidden_units=(16,)), tr["observations"][:10])
