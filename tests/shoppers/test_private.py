"""Private training (DP-SGD through Opacus) and the membership-inference check of the behaviour model."""

from __future__ import annotations

import numpy as np
import pytest

from ecomsim.data.reference_logs import log_reference_world, merge_logs
from ecomsim.shoppers.behavior import load_behavior_model
from ecomsim.shoppers.weights import load_net, save_weights, shipped_weights_path
from ecomsim.shoppers.membership import loss_threshold_attack, membership_inference, session_losses
from ecomsim.shoppers.training import BehaviorTrainConfig, train_behavior


@pytest.fixture(scope="module")
def small_logs():
    logs = merge_logs([log_reference_world(700, seed=21), log_reference_world(150, seed=22, slate_size=5,
                                                                              first_session=700)])
    return logs.split((0.8, 0.1, 0.1))


# ------------------------------------------------------------------ private training
def test_dp_training_records_epsilon_in_the_card(small_logs, tmp_path):
    pytest.importorskip("opacus", reason="private training needs the optional extra 'private' (opacus)")
    from ecomsim.shoppers.private import PrivateTrainConfig, train_private

    train, val, _ = small_logs
    cfg = PrivateTrainConfig(target_epsilon=3.0, epochs=1, batch_sessions=64, hidden=16, chunk_rows=512)
    net, privacy = train_private(train.steps, val.steps, cfg)
    n = privacy["train_sessions"]
    assert n == len(np.unique(np.concatenate([s.session for s in train.steps.values()])))
    assert 2.9 <= privacy["epsilon"] <= 3.0 and privacy["delta"] == pytest.approx(1 / (10 * n))
    assert privacy["steps"] == int(round(1 / privacy["sample_rate"])) and privacy["noise_multiplier"] > 0.3
    assert "NOT covered" in privacy["calibration"] and privacy["unit"] == "session"
    _, shipped = load_net(shipped_weights_path())
    card = save_weights(net, tmp_path / "dp.pt", {"hidden": 16, "feature_schema": shipped["feature_schema"],
                                                  "privacy": privacy})
    net2, card2 = load_net(tmp_path / "dp.pt")
    assert card2["privacy"]["epsilon"] == privacy["epsilon"] and card2["sha256"] == card["sha256"]
    model = load_behavior_model(path=tmp_path / "dp.pt")  # loads into the simulator like any weights
    assert model.net.user_mean.shape == net.user_mean.shape
    # the normalisation is the noisy release (noise sd 20 * 10 / n on each mean), not the data's exact mean;
    # 6 noise sds, plus 0.3 for weighting sessions (the release) instead of rows (the exact mean)
    noise = privacy["normalisation_noise_std_of_means"]
    assert noise == pytest.approx(cfg.stats_noise_multiplier * cfg.stats_clip / n)
    exact = np.concatenate([s.user for s in train.steps.values()]).mean(axis=0)
    got = net.user_mean.numpy()
    assert not np.allclose(got, exact, atol=1e-6) and np.abs(got - exact).max() < 6 * noise + 0.3


def test_dp_config_and_budget_errors(small_logs):
    pytest.importorskip("opacus", reason="private training needs the optional extra 'private' (opacus)")
    from ecomsim.shoppers.private import PrivateTrainConfig, noise_for_target, train_private

    with pytest.raises(ValueError, match="target_epsilon must be in"):
        PrivateTrainConfig(target_epsilon=0)
    with pytest.raises(ValueError, match="calibration must be 'public_split' or 'none'"):
        PrivateTrainConfig(target_epsilon=1, calibration="val")
    with pytest.raises(ValueError, match="below what the normalisation releases alone spend"):
        noise_for_target(0.01, 1e-5, 0.01, 100, stats_sigma=2.0)
    train, val, _ = small_logs
    with pytest.raises(ValueError, match="DP-SGD needs at least 2 \\* batch_sessions"):
        train_private(train.steps, val.steps, PrivateTrainConfig(target_epsilon=1, batch_sessions=4096))


def test_noise_grows_as_epsilon_shrinks():
    pytest.importorskip("opacus", reason="private training needs the optional extra 'private' (opacus)")
    from ecomsim.shoppers.private import noise_for_target

    sigmas = [noise_for_target(e, 1e-6, 0.01, 500, 20.0) for e in (1.0, 3.0, 8.0)]
    assert sigmas[0] > sigmas[1] > sigmas[2] > 0.3


# ------------------------------------------------------------------ membership inference
def test_attack_auc_on_known_losses():
    rng = np.random.default_rng(0)
    low, high = rng.uniform(0, 1, 300), rng.uniform(2, 3, 300)
    r = loss_threshold_attack(low, high)
    assert r["auc"] == 1.0 and r["advantage"] == 1.0
    assert loss_threshold_attack(high, low, bootstrap=0)["auc"] == 0.0
    same = rng.normal(size=2000)
    r = loss_threshold_attack(same[:1000], same[1000:])
    assert abs(r["auc"] - 0.5) < 0.05 and r["auc_ci95"][0] < 0.5 < r["auc_ci95"][1]  # 0.05: ~4 standard errors
    # an AUC of exactly 2/3: members' losses beat 2 of the 3 non-members each
    assert loss_threshold_attack(np.array([1.0, 1.0]), np.array([0.5, 2.0, 3.0]), bootstrap=0)["auc"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="need at least 2 finite losses per group"):
        loss_threshold_attack(np.array([1.0]), np.array([1.0, 2.0]))


def test_session_losses_match_an_explicit_likelihood(small_logs):
    net, _ = load_net(shipped_weights_path())
    _, _, test = small_logs
    s = test.steps[1]
    first = s.session[0]
    rows = np.flatnonzero(s.session == first)
    from ecomsim.shoppers.training import predict_steps

    pr = predict_steps(net, s.take(rows))
    ll = 0.0
    for r in range(len(rows)):
        c = s.click[rows[r], 0]
        ll += np.log(pr["click"][r, 0] if c else 1 - pr["click"][r, 0])
        if c:
            ll += np.log(pr["cart"][r, 0] if s.cart[rows[r], 0] else 1 - pr["cart"][r, 0])
        if s.cart[rows[r], 0]:
            ll += np.log(pr["purchase"][r, 0] if s.purchase[rows[r], 0] else 1 - pr["purchase"][r, 0])
        ll += np.log(pr["leave"][r] if s.left[rows[r]] else 1 - pr["leave"][r])
    losses = session_losses(net, {1: s})
    assert losses[0] == pytest.approx(-ll / len(rows), rel=1e-6)  # float32 probabilities


def test_shipped_model_gives_no_signal_between_two_unseen_groups(small_logs):
    """Null check: two groups of sessions the model never saw are told apart no better than chance."""
    net, _ = load_net(shipped_weights_path())
    train, _, test = small_logs
    r = membership_inference(net, train.steps, test.steps, seed=1)
    assert r["members"] == r["nonmembers"] and abs(r["auc"] - 0.5) < 0.1  # ~2.5 standard errors at 85 + 85


@pytest.mark.slow
def test_attack_finds_a_memorising_model_and_not_a_generalising_one():
    logs = log_reference_world(3200, seed=31)
    train, val, test = logs.split((0.5, 0.25, 0.25))
    few = train.steps[1].take(train.steps[1].session < np.unique(train.steps[1].session)[40])  # 40 sessions
    # validating on the training rows keeps the most memorised epoch
    memo, _ = train_behavior({1: few}, {1: few}, BehaviorTrainConfig(hidden=128, weight_decay=0.0, max_epochs=300,
                                                             patience=300, batch_steps=64, seed=0))
    strong = membership_inference(memo, {1: few}, test.steps, seed=0)
    fair, _ = train_behavior(train.steps, val.steps, BehaviorTrainConfig(hidden=32, max_epochs=8, patience=2, seed=0))
    weak = membership_inference(fair, train.steps, test.steps, seed=0)
    assert strong["auc"] > 0.85, strong
    assert abs(weak["auc"] - 0.5) < 0.06, weak  # 800 + 800 sessions: ~2.5 standard errors
