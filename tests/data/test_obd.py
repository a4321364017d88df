"""The Open Bandit Dataset sample, found inside the obp wheel without importing obp."""

from __future__ import annotations

import importlib.metadata
import importlib.util

import numpy as np
import pytest

from ecomsim.data import obd
from ecomsim.data.obd import load_obd, obd_files


def _has_obp() -> bool:
    try:
        importlib.metadata.distribution("obp")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


needs_obp = pytest.mark.skipif(not _has_obp(), reason="obp not installed: pip install --no-deps obp==0.4.1")


def test_obd_missing_gives_install_hint(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(obd.importlib.metadata, "distribution", missing)
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps obp==0\.4\.1"):
        obd_files()
    with pytest.raises(ValueError, match=r"campaign must be one of \['all', 'men', 'women'\], got 'kids'"):
        obd_files(campaign="kids")


@needs_obp
def test_obd_loads_without_importing_obp():
    import sys

    before = "obp" in sys.modules
    data = load_obd()
    assert ("obp" in sys.modules) == before
    f = data.frame
    assert len(f) == 10_000 and sorted(f["position"].unique()) == [0, 1, 2]
    assert f["carted"].isna().all() and f["price"].isna().all()
    assert np.isclose(f["propensity"], 1 / 80).all()  # uniform random over 80 items
    assert data.user.shape[0] == data.items.shape[0] == 10_000
    groups = data.steps()
    assert sorted(groups) == [0, 1, 2] and sum(len(g) for g in groups.values()) == 10_000
    assert importlib.util.find_spec("obp") is not None


@needs_obp
def test_encoding_fitted_on_one_file_scores_another(tmp_path):
    """Fit on random/all, store the encoding in the model's card, score bts/all and random/men with it unchanged."""
    from ecomsim.data.obd import ObdEncoding
    from ecomsim.shoppers.behavior import load_behavior_model
    from ecomsim.shoppers.weights import OBD_FEATURE_VERSION, load_net, save_weights
    from ecomsim.shoppers.training import BehaviorTrainConfig, predict_steps, train_behavior

    data = load_obd("random", "all")
    n = len(data.click)
    train, val = np.arange(n) < int(0.8 * n), np.arange(n) >= int(0.8 * n)
    net, _ = train_behavior(data.steps(train), data.steps(val), BehaviorTrainConfig(hidden=4, max_epochs=1, batch_steps=2048))
    card = {"hidden": 4, "feature_schema": {"version": OBD_FEATURE_VERSION, "user": data.user_names, "item": data.item_names},
            "obd_encoding": data.encoding.to_dict()}
    save_weights(net, tmp_path / "obd.pt", card)
    loaded, card = load_net(tmp_path / "obd.pt")
    encoding = ObdEncoding.from_dict(card["obd_encoding"], "obd.json")
    assert encoding == data.encoding
    # its own feature version: the simulator refuses it by name, not with a schema mismatch
    with pytest.raises(ValueError, match=r"obd.pt' was trained on Open Bandit Dataset features .*cannot drive the simulator"):
        load_behavior_model(path=tmp_path / "obd.pt")
    for policy, campaign in (("bts", "all"), ("random", "men")):
        own = load_obd(policy, campaign)  # what the loader did before: the file's own categories
        other = load_obd(policy, campaign, encoding=encoding)
        assert own.user.shape[1] != data.user.shape[1] or own.items.shape[1] != data.items.shape[1]
        assert other.user.shape[1] == data.user.shape[1] and other.items.shape[1] == data.items.shape[1]
        assert other.item_names == data.item_names and other.user_names == data.user_names
        # the unseen bucket: the sample hashes item categories per file, so here all of them are unseen (all-zero blocks)
        assert other.unseen["item_feature_3"] == len(np.unique(other.frame["item"]))
        block = [i for i, name in enumerate(other.item_names) if name.startswith("item_feature_3_")]
        assert not other.items[:, block].any() and other.user.sum(axis=1).max() <= 4
        for s in other.steps().values():
            p = predict_steps(loaded, s)["click"]
            assert p.shape == (len(s), 1) and np.isfinite(p).all() and ((p > 0) & (p < 1)).all()
    with pytest.raises(ValueError, match=r"obd.json: obd_encoding has format None, expected 'ecomsim-obd-encoding-v1'"):
        ObdEncoding.from_dict({"user": {}}, "obd.json")


def test_encoding_maps_unseen_categories_to_zero_blocks():
    import pandas as pd

    from ecomsim.data.obd import ObdEncoding

    raw = pd.DataFrame({"user_feature_0": ["b", "a", "b"]})
    items = pd.DataFrame({"item_id": [0, 1], "item_feature_0": [0.5, -1.0], "item_feature_1": ["x", "y"]})
    enc = ObdEncoding.fit(raw, items)
    assert enc.user_names == ["user_feature_0_a", "user_feature_0_b"] and enc.item_names == [
        "item_feature_0", "item_feature_1_x", "item_feature_1_y"]
    user, unseen = enc.user_features(pd.DataFrame({"user_feature_0": ["a", "zzz"]}))
    assert user.tolist() == [[1.0, 0.0], [0.0, 0.0]] and unseen == {"user_feature_0": 1}
    table, unseen = enc.item_table(pd.DataFrame({"item_id": [7], "item_feature_0": [2.0], "item_feature_1": ["new"]}))
    assert table.loc[7].tolist() == [2.0, 0.0, 0.0] and unseen == {"item_feature_1": 1}
    assert ObdEncoding.from_dict(enc.to_dict()) == enc
    with pytest.raises(ValueError, match=r"events: missing columns \['user_feature_0'\] that the encoding was fitted with"):
        enc.user_features(pd.DataFrame({"other": [1]}), "events")


@needs_obp
@pytest.mark.slow
def test_train_behavior_on_obd_stores_the_encoding_and_scores_the_other_files(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "obd.pt"
    proc = subprocess.run([sys.executable, "scripts/train_behavior.py", "--data", "obd:random/all", "--hidden", "8",
                           "--max-epochs", "2", "--out", str(out), "--log-dir", "", "--checkpoint", ""],
                          cwd=root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["obd_encoding"]["format"] == "ecomsim-obd-encoding-v1" and card["source"] == "obd:random/all"
    assert card["feature_schema"]["version"] == "ecomsim-obd-features-v1"  # the simulator refuses it by name
    assert set(card["other_files"]) == {"random/men", "random/women", "bts/all", "bts/men", "bts/women"}
    assert all(0.0 <= f["click_auc"] <= 1.0 and f["impressions"] == 10_000 for f in card["other_files"].values())
