"""The DNN behaviour model: shipped weights, checks on load, batched inference, seeding, training."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import ecomsim
from ecomsim.shoppers.behavior import BehaviorModel, load_behavior_model
from ecomsim.shoppers.weights import load_net, shipped_weights_path
from ecomsim.shoppers.network import FoldedNet
from ecomsim.shoppers.training import BehaviorTrainConfig, ece, heldout_metrics, train_behavior
from ecomsim.envs import EcomEnv, EcomVectorEnv
from ecomsim.data.reference_logs import log_reference_world, merge_logs

ROOT = Path(__file__).resolve().parents[2]
DNN = {"user_model": "dnn"}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return shipped_weights_path()


# ------------------------------------------------------------- loading
def test_shipped_weights_load_and_card(model_path):
    net, card = load_net(model_path)
    assert model_path.stat().st_size < 3_000_000
    assert card["feature_schema"]["item"][:8] == [f"cat_{c}" for c in ecomsim.make_reference_catalog().category_names]
    for key in ("click_auc", "click_auc_bayes", "purchase_auc", "click_ece"):
        assert key in card["test_metrics"]
    assert not net.training or isinstance(net, torch.nn.Module)


def copy_weights(tmp_path) -> Path:
    src = shipped_weights_path()
    dst = tmp_path / "behavior.pt"
    shutil.copy(src, dst)
    shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
    return dst


def test_corrupt_weights_fail_checksum(tmp_path):
    p = copy_weights(tmp_path)
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"behavior.pt' have sha256 [0-9a-f]{64}, but the card says"):
        load_behavior_model(path=p)


def test_schema_version_and_missing_files(tmp_path):
    p = copy_weights(tmp_path)
    card = json.loads(p.with_suffix(".json").read_text())
    card["feature_schema"]["version"] = "old-features"
    p.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match=r"feature schema version 'old-features', expected 'ecomsim-behavior-features-v1'"):
        load_behavior_model(path=p)
    with pytest.raises(FileNotFoundError, match=r"nope.pt' does not exist; build it with `python scripts/train_behavior.py`"):
        load_behavior_model(path=tmp_path / "nope.pt")


def _rewrite(weights: Path, data: bytes | None = None, **card_changes) -> None:
    """New weight bytes (the card's sha256 updated: past the checksum, the loader must say what is wrong) and card
    keys (``None`` drops one)."""
    card = json.loads(weights.with_suffix(".json").read_text())
    if data is not None:
        weights.write_bytes(data)
        card["sha256"] = hashlib.sha256(data).hexdigest()
    for key, value in card_changes.items():
        if value is None:
            card.pop(key)
        else:
            card[key] = value
    weights.with_suffix(".json").write_text(json.dumps(card))


def test_truncated_weights_are_named(tmp_path):
    p = copy_weights(tmp_path)
    _rewrite(p, p.read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"behaviour model weights '.*behavior.pt' is not a readable torch weights "
                                         r"file \(truncated or corrupted"):
        load_net(p)


def test_code_carrying_weights_are_refused_naming_the_file(tmp_path):
    p = copy_weights(tmp_path)
    target = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return exec, (f"open({str(target)!r}, 'w').write('ran')",)

    _rewrite(p, pickle.dumps(Payload()))
    with pytest.raises(ValueError, match=r"behaviour model weights '.*behavior.pt' holds objects other than tensors"):
        load_net(p)
    assert not target.exists()


@pytest.mark.parametrize("key", ["hidden", "feature_schema", "sha256"])
def test_card_missing_keys_are_named(tmp_path, key):
    p = copy_weights(tmp_path)
    _rewrite(p, **{key: None})
    with pytest.raises(ValueError, match=rf"behaviour model card '.*behavior.json' lacks keys \['{key}'\]"):
        load_net(p)


@pytest.mark.parametrize("key", ["user", "item", "version"])
def test_card_schema_missing_keys_are_named(tmp_path, key):
    p = copy_weights(tmp_path)
    card = json.loads(p.with_suffix(".json").read_text())
    _rewrite(p, feature_schema={k: v for k, v in card["feature_schema"].items() if k != key})
    with pytest.raises(ValueError, match=rf"behaviour model card '.*behavior.json' feature_schema lacks keys \['{key}'\]"):
        load_net(p)


def test_card_values_of_the_wrong_kind_are_named(tmp_path):
    p = copy_weights(tmp_path)
    card = json.loads(p.with_suffix(".json").read_text())
    _rewrite(p, hidden="64")
    with pytest.raises(ValueError, match=r"behavior.json' hidden must be a positive integer .*got '64'"):
        load_net(p)
    _rewrite(p, hidden=card["hidden"], feature_schema=dict(card["feature_schema"], user="segment_0"))
    with pytest.raises(ValueError, match=r"behavior.json' feature_schema\['user'\] must be a non-empty list of names"):
        load_net(p)
    _rewrite(p, feature_schema=card["feature_schema"], hidden=card["hidden"] * 2)
    with pytest.raises(ValueError, match=r"behavior.pt' do not fit the card's architecture"):
        load_net(p)
    with pytest.raises(IsADirectoryError, match=r"behaviour model weights '.*' is a directory"):
        load_net(tmp_path)


def test_catalog_with_other_categories_is_rejected():
    cat = ecomsim.make_reference_catalog(num_items=300, categories={"a": (10.0, 0.5), "b": (20.0, 0.5)})
    with pytest.raises(ValueError, match=r"feature schema mismatch for item features.*same category names"):
        EcomEnv(catalog_obj=cat, **DNN)


def test_gan_like_catalog_with_same_schema_works():
    cat = ecomsim.make_reference_catalog(num_items=700, seed=5)  # other items, same category names and dim
    env = EcomVectorEnv(num_envs=8, catalog_obj=cat, **DNN)
    env.reset(seed=0)
    _, r, *_ = env.step(np.zeros(8, dtype=int))
    assert np.isfinite(r).all()


# ----------------------------------------------------------- inference
def test_dnn_is_the_default_shopper():
    assert EcomEnv().core.shopper.name == "dnn"
    assert EcomEnv(user_model="reference").core.shopper.name == "reference"


def advanced_env(num_envs=64, mode="slate", steps=6):
    kw = dict(DNN, mode=mode, slate_size=5 if mode == "slate" else 1)
    env = EcomVectorEnv(num_envs=num_envs, **kw)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(steps):  # some history: clicks, repeats, purchases
        env.step(env.action_space.sample() if mode == "recommend" else rng.integers(0, 20, size=(num_envs, 5)))
    return env


def test_batched_equals_row_by_row():
    env = advanced_env()
    core, model = env.core, env.core.shopper
    items = core.candidates[:, :5]
    pos = np.arange(5, dtype=np.float64)
    full = model.reaction(items, pos)
    for i in range(core.num_envs):
        one = model.reaction(items[i : i + 1], pos, rows=np.array([i]))
        for name in ("click", "cart", "purchase", "leave"):
            np.testing.assert_allclose(getattr(one, name)[0], getattr(full, name)[i], rtol=1e-5, atol=1e-7)


def test_compiled_forward_equals_torch():
    """``FoldedNet`` (the compiled per-session forward) equals the torch network within float32 rounding."""
    env = advanced_env(num_envs=200)
    model: BehaviorModel = env.core.shopper
    tr = model.tracker
    items = env.core.candidates
    args = (tr.user_features(), tr.item_features(items), np.arange(20, dtype=np.float32), env.core.portraits.channel)
    fast = FoldedNet(model.net)(*args)
    with torch.inference_mode():
        slow = model.net(*(torch.as_tensor(a) for a in args))
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a, b.double().numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("k", [1, 5])
def test_torch_inference_equals_forward_bit_for_bit(k):
    """The torch path of ``predict`` (``BehaviorNet.inference``) gives exactly ``forward``'s numbers."""
    model = load_behavior_model()
    net = model.net
    g = np.random.default_rng(k)
    n = 3000
    user = torch.as_tensor(g.normal(size=(n, net.user_mean.shape[0])).astype(np.float32))
    items = torch.as_tensor(g.normal(size=(n, k, net.item_mean.shape[0])).astype(np.float32))
    pos, ch = torch.arange(k, dtype=torch.float32), torch.as_tensor(g.integers(0, 3, size=n))
    with torch.inference_mode():
        for a, b in zip(net.inference(user, items, pos, ch), net(user, items, pos, ch)):
            assert a.shape == b.shape and a.numpy().tobytes() == b.numpy().tobytes()


def test_reaction_shapes_and_ranges():
    env = advanced_env(num_envs=32, mode="recommend")
    r = env.core.candidate_reaction()
    assert r.click.shape == (32, 20) and r.leave.shape == (32, 3)
    for p in (r.click, r.cart, r.purchase, r.leave):
        assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()


def test_same_seed_same_samples():
    def run(seed):
        env = EcomVectorEnv(num_envs=16, **DNN)
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(1)
        out = [obs]
        for _ in range(40):
            obs, r, te, tr, info = env.step(rng.integers(0, 20, size=16))
            out += [obs, r, te, tr, info["clicked"]]
        return out

    a, b, c = run(3), run(3), run(4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_single_equals_vector_with_dnn():
    single = EcomEnv(**DNN)
    vec = EcomVectorEnv(num_envs=1, **DNN)
    o1, _ = single.reset(seed=5)
    o2, _ = vec.reset(seed=5)
    for t in range(30):
        o1, r1, t1, tr1, _ = single.step(t % 20)
        o2, r2, t2, tr2, _ = vec.step(np.array([t % 20]))
        np.testing.assert_array_equal(o1, o2[0])
        assert (r1, t1, tr1) == (r2[0], t2[0], tr2[0])
        if t1 or tr1:
            break


def test_pricier_items_sell_less():
    env = advanced_env(num_envs=300, mode="recommend", steps=0)
    core = env.core
    items = core.candidates[:, :1]
    base = core.shopper.reaction(items, np.zeros(1))
    cat = core.catalog
    dear = dataclasses.replace(cat, price=cat.price * 2.0)  # a validated copy with doubled prices
    env2 = EcomVectorEnv(num_envs=300, catalog_obj=dear, **DNN)
    env2.reset(seed=0)
    pricier = env2.core.shopper.reaction(items, np.zeros(1))
    assert (pricier.purchase_total < base.purchase_total).mean() > 0.9


def test_sampled_clicks_match_dnn_probabilities():
    env = EcomVectorEnv(num_envs=1000, **DNN)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    clicks = expected = var = 0.0
    for _ in range(30):
        acts = rng.integers(0, 20, size=1000)
        alive = ~env._autoreset
        p = env.core.candidate_reaction().click[np.arange(1000), acts][alive]
        _, _, _, _, info = env.step(acts)
        clicks += info["clicks"][alive].sum()
        expected += p.sum()
        var += (p * (1 - p)).sum()
    assert abs(clicks - expected) / np.sqrt(var) < 4.0


# ------------------------------------------------------------- training
def test_ece_of_perfect_calibration_is_small():
    rng = np.random.default_rng(0)
    p = rng.random(200_000)
    assert ece(rng.random(200_000) < p, p) < 0.01
    assert ece(np.ones(1000), np.zeros(1000)) == pytest.approx(1.0)


def test_training_is_seeded_and_leaves_global_rng_alone():
    logs = log_reference_world(120, seed=0, batch=64)
    train, val, _ = logs.split((0.6, 0.2, 0.2))
    cfg = BehaviorTrainConfig(hidden=8, max_epochs=2, batch_steps=128)
    state = torch.random.get_rng_state()
    a, _ = train_behavior(train.steps, val.steps, cfg)
    assert torch.equal(state, torch.random.get_rng_state())
    b, _ = train_behavior(train.steps, val.steps, cfg)
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), k


def test_tiny_training_run_subprocess(tmp_path):
    out = tmp_path / "b.pt"
    cmd = [sys.executable, "scripts/train_behavior.py", "--sessions", "300", "--slate-sessions", "100", "--max-epochs", "2",
           "--hidden", "8", "--out", str(out), "--log-dir", str(tmp_path / "runs"), "--checkpoint", str(tmp_path / "ck.pt")]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["hidden"] == 8 and "click_auc" in card["test_metrics"]
    model = load_behavior_model(path=out)
    env = EcomVectorEnv(num_envs=4, shopper_obj=model)
    env.reset(seed=0)
    env.step(np.zeros(4, dtype=int))
    assert any((tmp_path / "runs").iterdir())  # TensorBoard behavior/... scalars


# -------------------------------------------------- fidelity (statistical)
@pytest.mark.slow
def test_shipped_weights_reproduce_card_metrics():
    net, card = load_net(shipped_weights_path())
    logs = merge_logs([log_reference_world(8000, seed=777), log_reference_world(3000, seed=778, slate_size=5, first_session=8000)])
    m = heldout_metrics(net, logs.steps)
    want = card["test_metrics"]
    assert abs(m["click_auc"] - want["click_auc"]) < 0.01
    assert abs(m["purchase_auc"] - want["purchase_auc"]) < 0.03
    assert m["click_auc_ratio"] >= 0.97 and m["purchase_auc_ratio"] >= 0.95
    assert m["click_ece"] <= 0.015


@pytest.mark.slow
def test_policy_agreement_random_and_greedy():
    from agents.baselines import BASELINES
    from agents.evaluation import evaluate

    for name in ("random", "greedy"):
        conv = {}
        for world in ("reference", "dnn"):
            env = EcomVectorEnv(num_envs=500, user_model=world, catalog="reference")
            conv[world] = evaluate(BASELINES[name](), env, 5000, seed=11).metrics["conversion_rate"].value
        assert abs(conv["dnn"] / conv["reference"] - 1) < 0.2, (name, conv)
