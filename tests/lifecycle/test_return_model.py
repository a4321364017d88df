"""The return-time model: hazard arithmetic, censoring, its files, training and its churn AUC."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ecomsim.lifecycle.retention import RetentionEnv
from ecomsim.lifecycle.return_model import (DECISION_FEATURES, RETURN_BINS, RETURN_FEATURES, ReturnNet,
                                            decision_features, hazard_nll, load_return_model, save_return_model,
                                            survival)
from ecomsim.lifecycle.return_training import (LifecycleLogs, ReturnTrainConfig, churn_auc, lifecycle_logs,
                                               train_return_model)


def test_survival_is_exact_at_edges_and_even_inside_a_bin():
    h = np.full((2, len(RETURN_BINS)), 0.1)
    h[1] = 0.0
    assert survival(h, 7)[0] == pytest.approx(0.9)
    assert survival(h, 30)[0] == pytest.approx(0.9 ** 4)
    assert survival(h, 10)[0] == pytest.approx(0.9 * 0.9 ** (3 / 7))  # 3 of bin 2's 7 days
    assert survival(h, 365)[1] == 1.0
    for bad in (0, -1, 366):
        with pytest.raises(ValueError, match=f"days.*{bad}"):
            survival(h, bad)


def test_targets_and_nll_by_hand():
    logs = LifecycleLogs(customer=np.arange(4), features=np.zeros((4, len(RETURN_FEATURES)), np.float32),
                         decision=np.zeros((4, 3), np.float32), gap=np.array([7, 8, -1, -1]),
                         window=np.array([300, 300, 29, 30]), bayes_risk=np.zeros(4))
    event, observed = logs.targets()
    np.testing.assert_array_equal(event, [0, 1, -1, -1])
    np.testing.assert_array_equal(observed, [0, 1, 3, 4])  # censored: bins ending inside the window survived
    labels, known = logs.churned_within(30)
    np.testing.assert_array_equal(labels, [False, False, True, True])
    np.testing.assert_array_equal(known, [True, True, False, True])  # 29 days watched cannot tell
    logits = torch.zeros(4, len(RETURN_BINS))  # every hazard 1/2
    nll = hazard_nll(logits, torch.from_numpy(event), torch.from_numpy(observed))
    expected = -(1 * math.log(0.5) + 2 * math.log(0.5) + 3 * math.log(0.5) + 4 * math.log(0.5)) / 4
    assert float(nll) == pytest.approx(expected)


def test_decision_features():
    x = decision_features(np.array([0.0, 0.1, 0.2]), np.array([[0, 0], [14, 0], [7, 30]]))
    np.testing.assert_allclose(x, [[0, 0, 0], [0.1, 0.5, 0.5], [0.2, 1.0, 7 / 21]])
    assert x.shape[1] == len(DECISION_FEATURES)
    np.testing.assert_array_equal(decision_features(np.zeros(2), np.zeros((2, 0))), np.zeros((2, 3)))


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A model trained on 400 logged customers (seconds), saved and loaded back."""
    logs = lifecycle_logs(400, seed=3)
    model, summary = train_return_model(logs, ReturnTrainConfig(hidden=16, epochs=8, seed=1))
    path = tmp_path_factory.mktemp("ret") / "ret.pt"
    save_return_model(model.net, path, {"hidden": 16, "training": summary})
    return path, logs


def test_logs_follow_customers_to_the_horizon(small_model):
    _, logs = small_model
    assert len(np.unique(logs.customer)) == 400 and len(logs) > 1000
    seen = logs.gap >= 1
    assert (logs.gap[seen] <= logs.window[seen]).all()  # a visit lies inside the watched window
    assert (logs.window >= 0).all() and (logs.window <= 365).all()
    assert ((logs.bayes_risk >= 0) & (logs.bayes_risk <= 1)).all()
    assert len(np.unique(logs.decision[:, 0])) == 4  # the random policy sends every coupon


def test_saved_model_reloads_identically_and_learns_something(small_model):
    path, logs = small_model
    model = load_return_model(path)
    held = lifecycle_logs(300, seed=11, policy="never")
    figures = churn_auc(model, held)
    # 400 customers and 8 epochs: far from the shipped model, yet well above chance on other customers
    assert figures["auc_learned"] > 0.6 and 0.5 < figures["auc_bayes"] <= 1.0
    again = load_return_model(path)
    np.testing.assert_array_equal(model.churn_risk(held.features[:50]), again.churn_risk(held.features[:50]))
    env = RetentionEnv(user_model="reference", return_model=str(path))
    obs, info = env.reset(seed=2)
    assert obs[-1] == pytest.approx(model.churn_risk(obs[None, :-1])[0], abs=1e-6)


def test_training_is_seeded():
    logs = lifecycle_logs(150, seed=5)
    a, _ = train_return_model(logs, ReturnTrainConfig(hidden=8, epochs=3, seed=2))
    b, _ = train_return_model(logs, ReturnTrainConfig(hidden=8, epochs=3, seed=2))
    for x, y in zip(a.net.state_dict().values(), b.net.state_dict().values()):
        assert torch.equal(x, y)


def test_bad_files_and_options_are_named(small_model, tmp_path):
    path, _ = small_model
    with pytest.raises(FileNotFoundError, match="return model weights.*nowhere.pt"):
        RetentionEnv(user_model="reference", return_model=str(tmp_path / "nowhere.pt"))
    card = json.loads(path.with_suffix(".json").read_text())
    for key, value, match in (("format", "ecomsim-behavior-v1", "format"), ("bins", [7, 30], "bins"),
                              ("features", ["recency"], "features"), ("sha256", "0" * 64, "sha256"),
                              ("hidden", 17, "do not fit")):
        bad = tmp_path / f"bad_{key}.pt"
        bad.write_bytes(path.read_bytes())
        bad.with_suffix(".json").write_text(json.dumps(dict(card, **{key: value})))
        with pytest.raises(ValueError, match=match):
            load_return_model(bad)
    with pytest.raises(ValueError, match="policy.*sometimes"):
        lifecycle_logs(10, seed=0, policy="sometimes")
    with pytest.raises(ValueError, match="customers.*0"):
        lifecycle_logs(0, seed=0)
    with pytest.raises(ValueError, match="val_share.*1.5"):
        ReturnTrainConfig(val_share=1.5)


def test_pickled_weights_are_refused(small_model, tmp_path):
    path, _ = small_model
    import hashlib
    import pickle

    bad = tmp_path / "evil.pt"
    bad.write_bytes(pickle.dumps({"body.0.weight": ReturnNet}))
    card = json.loads(path.with_suffix(".json").read_text())
    card["sha256"] = hashlib.sha256(bad.read_bytes()).hexdigest()
    bad.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="evil.pt"):
        load_return_model(bad)


@pytest.mark.slow
def test_shipped_model_churn_auc_on_new_customers():
    """The shipped model's figure in its card, reproduced on other held-out customers (seed 7, 3,000 of them):
    its AUC within 0.02 of the card's (sampling noise of ~900 churners) and the ratio to Bayes above 0.9."""
    model = load_return_model()
    card = model.card["heldout"]
    figures = churn_auc(model, lifecycle_logs(3000, seed=7, policy="never"))
    assert figures["auc_learned"] == pytest.approx(card["auc_learned"], abs=0.02)
    assert figures["ratio"] > 0.9
