"""The catalog GAN: valid catalogs, seeding, conditioning, shipped weights, training, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import importlib.metadata
import numpy as np
import pandas as pd
import pytest
import torch

from ecomsim.catalog import REFERENCE_CATEGORIES, Catalog, load_catalog
from ecomsim.data.obd import obd_catalog, obd_files
from generators.data import (
    MIN_TRAIN_ROWS,
    catalog_to_table,
    check_training_table,
    reference_table,
    split_table,
)
from generators.sampler import CatalogGAN, allocate, shipped_generator_card
from generators.transform import TableTransformer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gan() -> CatalogGAN:
    return CatalogGAN.load()


@pytest.fixture
def card_copy(tmp_path) -> Path:
    src = shipped_generator_card()
    shutil.copy(src, tmp_path / src.name)
    shutil.copy(src.with_name(json.loads(src.read_text())["weights"]), tmp_path)
    return tmp_path / src.name


# ---------------------------------------------------------------- sampling
def test_generated_catalogs_validate_for_many_seeds(gan):
    for seed in range(25):
        cat = gan.sample(300, seed=seed)  # Catalog.__post_init__ validates: NaN, prices, categories, popularity
        assert cat.num_items == 300
        assert cat.category_names == tuple(REFERENCE_CATEGORIES)
        assert cat.embed_dim == 8
        assert np.allclose(np.linalg.norm(cat.embedding, axis=1), 1.0, atol=1e-5)


def test_same_seed_same_catalog_bit_for_bit(gan):
    a, b, c = gan.sample(1000, seed=7), gan.sample(1000, seed=7), gan.sample(1000, seed=8)
    assert a.equals(b)
    assert not a.equals(c)


def test_category_mix_is_exact_to_rounding(gan):
    mix = {"fashion": 0.5, "books": 0.3, "grocery": 0.2, "electronics": 0.0}
    n = 997
    cat = gan.sample(n, seed=1, category_mix=mix)
    counts = np.bincount(cat.category, minlength=cat.num_categories)
    for name, share in mix.items():
        # tolerance: largest-remainder rounding, at most one item per category
        assert abs(counts[cat.category_names.index(name)] - share * n) <= 1.0
    assert counts.sum() == n
    assert counts[[cat.category_names.index(c) for c in ("shoes", "home")]].sum() == 0


def test_default_mix_is_training_mix(gan):
    cat = gan.sample(2000, seed=3)
    share = np.bincount(cat.category, minlength=cat.num_categories) / 2000
    assert np.abs(share - gan.category_share).max() <= 1 / 2000 + 1e-12


def test_price_band_is_honoured(gan):
    cat = gan.sample(500, seed=2, price_band=(20.0, 80.0))
    assert cat.price.min() >= 20.0 and cat.price.max() <= 80.0


def test_allocate_sums_and_rounds():
    counts = allocate(10, np.array([1 / 3, 1 / 3, 1 / 3]))
    assert counts.sum() == 10 and counts.max() - counts.min() == 1


# ----------------------------------------------------------------- shipped
def test_shipped_default_catalog_matches_shopper_contract(gan):
    cat = load_catalog("default")
    ref = load_catalog("reference")
    assert cat.category_names == ref.category_names and cat.embed_dim == ref.embed_dim
    assert cat.num_items == 2000
    assert cat.meta["generator_sha256"] == gan.card["sha256"]


def test_card_describes_weights(gan):
    card = gan.card
    for key in ("sha256", "schema", "fidelity", "train_config", "data", "split"):
        assert key in card
    assert card["data"] == "reference"


# --------------------------------------------------------------- bad input
def test_unknown_category(gan):
    with pytest.raises(ValueError, match=r"unknown category 'fashon'.*Did you mean 'fashion'"):
        gan.sample(10, seed=0, category_mix={"fashon": 1.0})


@pytest.mark.parametrize("n", [0, -5, 2.5])
def test_non_positive_size(gan, n):
    with pytest.raises(ValueError, match=r"num_items must be a positive integer, got"):
        gan.sample(n, seed=0)


def test_bad_mix_and_band(gan):
    with pytest.raises(ValueError, match=r"category_mix\['books'\] must be a finite number >= 0, got -1"):
        gan.sample(10, seed=0, category_mix={"books": -1})
    with pytest.raises(ValueError, match="positive share somewhere"):
        gan.sample(10, seed=0, category_mix={"books": 0})
    with pytest.raises(ValueError, match=r"price_band must be \(low, high\)"):
        gan.sample(10, seed=0, price_band=(50, 10))
    with pytest.raises(ValueError, match=r"price_band .* holds too few generated 'grocery' items"):
        gan.sample(10, seed=0, category_mix={"grocery": 1}, price_band=(5000, 6000))


def test_corrupted_weights(card_copy):
    weights = card_copy.with_suffix(".pt")
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"sha256 .* the card expects .*corrupted"):
        CatalogGAN.load(card_copy)


def test_corrupted_card(card_copy):
    card_copy.write_text(card_copy.read_text()[:100])
    with pytest.raises(ValueError, match="is not valid JSON"):
        CatalogGAN.load(card_copy)


def test_bad_generator_cards_and_weights(tmp_path, card_copy):
    import hashlib
    import json
    import pickle

    card = json.loads(card_copy.read_text())
    for key in ("network", "sha256", "schema"):
        card_copy.write_text(json.dumps({k: v for k, v in card.items() if k != key}))
        with pytest.raises(ValueError, match=rf"generator card '.*' lacks keys \['{key}'\]"):
            CatalogGAN.load(card_copy)
    card_copy.write_text(json.dumps(dict(card, network={"noise_dim": 64})))
    with pytest.raises(ValueError, match=r"generator card '.*' 'network' lacks keys \['gen_hidden'\]"):
        CatalogGAN.load(card_copy)
    weights = card_copy.with_suffix(".pt")
    target = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return exec, (f"open({str(target)!r}, 'w').write('ran')",)

    for data, match in ((weights.read_bytes()[:3000], r"is not a readable torch weights file \(truncated or corrupted\?\)"),
                        (pickle.dumps(Payload()), r"holds objects other than tensors \(a pickle that could run code")):
        weights.write_bytes(data)
        card_copy.write_text(json.dumps(dict(card, sha256=hashlib.sha256(data).hexdigest())))
        with pytest.raises(ValueError, match=r"generator weights '.*catalog_gan.pt' " + match):
            CatalogGAN.load(card_copy)
    assert not target.exists()
    with pytest.raises(IsADirectoryError, match=r"generator card '.*' is a directory; expected a generator card \(.json\)"):
        CatalogGAN.load(tmp_path)
    card_copy.write_bytes(b"\xff\xfe{")
    with pytest.raises(ValueError, match=r"generator card '.*' is not UTF-8 text \(byte 0xff at offset 0\)"):
        CatalogGAN.load(card_copy)


def test_missing_files(tmp_path, card_copy):
    with pytest.raises(FileNotFoundError, match="does not exist; build it with scripts/train_gan.py"):
        CatalogGAN.load(tmp_path / "nope.json")
    card_copy.with_suffix(".pt").unlink()
    with pytest.raises(FileNotFoundError, match="generator weights file .* does not exist"):
        CatalogGAN.load(card_copy)


def test_schema_mismatch(card_copy):
    card = json.loads(card_copy.read_text())
    card["network"]["gen_hidden"] = [32, 32]
    card_copy.write_text(json.dumps(card))
    with pytest.raises(ValueError, match="do not match the card's schema"):
        CatalogGAN.load(card_copy)


# -------------------------------------------------------------- data, encoding
def test_transformer_round_trip():
    table, names = reference_table(num_items=1000, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr = TableTransformer(seed=0).fit(table, names)
    codes = np.array([names.index(c) for c in table["category"]])
    back = tr.decode(tr.encode(table), codes)
    # encoding clips alpha at 4 sd of a mode: compare the rows inside that range
    inside = np.abs(tr.encode(table)[:, 0]) < 0.99
    assert np.allclose(back["price"][inside], table["price"][inside], atol=0.011)
    assert np.allclose(back["quality"], table["quality"], atol=1e-6)
    assert tr.to_dict() == TableTransformer.from_dict(json.loads(json.dumps(tr.to_dict()))).to_dict()


def test_split_is_stratified_and_disjoint():
    table, _ = reference_table(num_items=1000)
    train, hold = split_table(table, 0.2, 0)
    assert len(train) + len(hold) == 1000
    p = train["category"].value_counts(normalize=True)
    q = hold["category"].value_counts(normalize=True).reindex(p.index)
    assert (p - q).abs().max() < 0.01


def test_small_tables_get_a_clear_error():
    table, _ = reference_table(num_items=MIN_TRAIN_ROWS - 1)
    with pytest.raises(ValueError, match=rf"has {MIN_TRAIN_ROWS - 1} rows, fewer than MIN_TRAIN_ROWS={MIN_TRAIN_ROWS}"):
        check_training_table(table)
    bad = reference_table(num_items=100)[0]
    bad.loc[3, "price"] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        check_training_table(bad)


def test_obd_missing_says_how_to_install(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps obp==0.4\.1"):
        obd_files()


def test_obd_catalog_is_valid():
    pytest.importorskip("importlib.metadata")
    try:
        obd_files()
    except ModuleNotFoundError:
        pytest.skip("obp not installed")
    cat = obd_catalog()
    assert cat.num_items == 80 and cat.num_categories == 7
    assert isinstance(catalog_to_table(cat), pd.DataFrame)


# ------------------------------------------------------------------- slow
def run(args, tmp_path, timeout=600):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_shipped_weights_reproduce_card_fidelity():
    out = run(["scripts/catalog_report.py", "--json", "--png", ""], None)
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    card = rep["card_fidelity"]
    # same machine, same seeds: tolerance covers thread-count and BLAS differences only
    for key in ("max_column_distance", "corr_max_abs_diff", "c2st_auc", "median_price_max_rel_err", "dcr_ratio"):
        assert abs(rep["figures"][key] - card[key]) <= 0.02, (key, rep["figures"][key], card[key])
    assert rep["figures"]["exact_copies"] == 0


@pytest.mark.slow
def test_tiny_training_run_and_resume(tmp_path):
    common = ["scripts/train_gan.py", "--out", str(tmp_path / "gan"), "--catalog-out", str(tmp_path / "c.npz"),
              "--catalog-items", "300", "--log-dir", str(tmp_path / "runs"), "--checkpoint", str(tmp_path / "ck.pt")]
    out = run([*common, "--epochs", "2"], tmp_path)
    assert out.returncode == 0, out.stderr
    out = run([*common, "--epochs", "3", "--resume", "1"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "resumed from" in out.stdout and "at epoch 2" in out.stdout
    gan = CatalogGAN.load(tmp_path / "gan" / "catalog_gan.json")
    assert gan.card["train_config"]["epochs"] == 3
    assert Catalog.load(tmp_path / "c.npz").num_items == 300
    assert list((tmp_path / "runs").glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_obd_table_trains_to_valid_catalogs(tmp_path):
    try:
        obd_files()
    except ModuleNotFoundError:
        pytest.skip("obp not installed")
    out = run(["scripts/train_gan.py", "--data", "obd", "--epochs", "20", "--out", str(tmp_path),
               "--catalog-out", "", "--log-dir", "", "--checkpoint", ""], tmp_path)
    assert out.returncode == 0, out.stderr
    gan = CatalogGAN.load(tmp_path / "catalog_gan.json")
    for seed in range(5):
        cat = gan.sample(200, seed=seed)
        assert cat.num_categories == 7 and np.all(cat.quality == 0.5)


def test_train_config_errors():
    import torch

    from generators.train import GanTrainConfig

    with pytest.raises(ValueError, match=r"device must be 'cpu' or 'cuda\[:i\]', got 'tpu'"):
        GanTrainConfig(device="tpu")
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 0"):
        GanTrainConfig(epochs=0)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="torch sees no CUDA device"):
            GanTrainConfig(device="cuda")


def test_tiny_training_in_process_is_seeded():
    import torch

    from generators.train import GanTrainConfig, train_gan

    table, names = reference_table(num_items=200, seed=1)
    cfg = GanTrainConfig(epochs=1, batch_size=64, critic_steps=1, gen_hidden=(32,), critic_hidden=(32,), eval_every=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = train_gan(table, names, cfg, log=lambda *_: None).sample(50, seed=0)
            b = train_gan(table, names, cfg, log=lambda *_: None).sample(50, seed=0)
    finally:
        torch.set_num_threads(threads)
    assert a.equals(b)  # same seed, same training, same catalog


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA device")
def test_cuda_training_and_sampling():
    from generators.train import GanTrainConfig, train_gan

    table, names = reference_table(num_items=200, seed=1)
    cfg = GanTrainConfig(epochs=1, batch_size=64, critic_steps=1, eval_every=1, device="cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gan = train_gan(table, names, cfg, log=lambda *_: None)
    cat = gan.sample(100, seed=0)
    assert cat.num_items == 100 and cat.equals(gan.sample(100, seed=0))


@pytest.mark.slow
def test_gan_stop_and_resume_equal_an_uninterrupted_run(tmp_path):
    from ecomsim.errors import TrainingStopped
    from generators.data import reference_table
    from generators.train import GanTrainConfig, train_gan

    table, names = reference_table(num_items=200)
    cfg = GanTrainConfig(epochs=3, batch_size=64, noise_dim=8, gen_hidden=(16,), critic_hidden=(16,), critic_steps=1,
                         eval_every=0, checkpoint_every=0, max_modes=2)
    quiet = lambda *a: None  # noqa: E731
    whole = train_gan(table, names, cfg, log=quiet)
    ckpt = tmp_path / "ck.pt"
    asked = {"n": 0}

    def stop_after_first_epoch() -> bool:
        asked["n"] += 1
        return True

    with pytest.raises(TrainingStopped) as exc:
        train_gan(table, names, cfg, checkpoint=ckpt, log=quiet, should_stop=stop_after_first_epoch)
    assert exc.value.checkpoint == ckpt and exc.value.progress == "epoch 1 of 3" and asked["n"] == 1
    resumed = train_gan(table, names, cfg, checkpoint=ckpt, resume=True, log=quiet)
    for (k, a), b in zip(whole.generator.state_dict().items(), resumed.generator.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match=r"GAN checkpoint '.*ck.pt' was written with other options \(checkpoint, now\): "
                                         r"\{'noise_dim': \(8, 9\)\}"):
        train_gan(table, names, GanTrainConfig(**{**cfg.__dict__, "noise_dim": 9}), checkpoint=ckpt, resume=True, log=quiet)
    with pytest.raises(FileNotFoundError, match=r"resume: no GAN checkpoint at '.*nope.pt'"):
        train_gan(table, names, cfg, checkpoint=tmp_path / "nope.pt", resume=True, log=quiet)
