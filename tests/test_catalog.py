"""Catalog validation, files, the reference catalog's shape of prices and popularity."""

from __future__ import annotations

import numpy as np
import pytest

from ecomsim.catalog import Catalog, load_catalog, make_reference_catalog
from ecomsim.shoppers.population import ShopperPopulation
from ecomsim.sim.streams import SessionStreams


def small(**over):
    cols = dict(
        item_id=np.arange(4),
        category=np.array([0, 1, 1, 0]),
        price=np.array([1.0, 2.0, 3.0, 4.0]),
        quality=np.array([0.1, 0.5, 0.9, 0.3]),
        popularity=np.full(4, 0.25),
        embedding=np.eye(4, 3),
        category_names=("a", "b"),
    )
    cols.update(over)
    return Catalog(**cols)


@pytest.mark.parametrize(
    "over, match",
    [
        ({"price": np.array([1.0, -2.0, 3.0, 4.0])}, r"'price' must be > 0, got -2.0 at row 1"),
        ({"price": np.array([1.0, np.nan, 3.0, 4.0])}, r"'price' has a non-finite value at row 1"),
        ({"item_id": np.array([0, 1, 1, 3])}, r"item_id must be unique, got duplicates e.g. 1"),
        ({"category": np.array([0, 1, 2, 0])}, r"'category' must be in \[0, 1\], got 2 at row 2"),
        ({"quality": np.array([0.1, 1.5, 0.2, 0.3])}, r"'quality' must be in \[0, 1\], got 1.5 at row 1"),
        ({"popularity": np.full(4, 0.3)}, r"'popularity' must sum to 1"),
        ({"embedding": np.ones((3, 2))}, r"'embedding' must have shape \(4, d>=1\)"),
        ({"category_names": ("a", "a")}, r"category_names must be non-empty and unique"),
    ],
)
def test_validation_errors(over, match):
    with pytest.raises(ValueError, match=match):
        small(**over)


def test_save_load_roundtrip(tmp_path):
    cat = make_reference_catalog(num_items=300, seed=3)
    path = cat.save(tmp_path / "c.npz")
    back = Catalog.load(path)
    for col in ("item_id", "category", "price", "quality", "popularity", "embedding"):
        np.testing.assert_array_equal(getattr(cat, col), getattr(back, col))
    assert back.category_names == cat.category_names
    assert load_catalog(str(path)).num_items == 300


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Catalog.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"junk.npz' is not a .npz \(zip\) archive: it starts with b'not '"):
        Catalog.load(junk)
    partial = tmp_path / "partial.npz"
    np.savez(partial, price=np.ones(3))
    with pytest.raises(ValueError, match=r"lacks arrays \['header', 'item_id'"):
        Catalog.load(partial)


def test_reference_catalog_properties():
    cat = make_reference_catalog()
    assert cat.num_items == 5000 and cat.num_categories == 8 and cat.embed_dim == 8
    assert cat.equals(make_reference_catalog())  # deterministic
    # dearer items rate better (within-category log price vs quality)
    lp = np.log(cat.price)
    z = np.zeros_like(lp)
    for c in range(cat.num_categories):
        m = cat.category == c
        z[m] = (lp[m] - lp[m].mean()) / lp[m].std()
    assert np.corrcoef(z, cat.quality)[0, 1] > 0.3
    # power-law popularity: the top 1% of items hold a large share
    top = np.sort(cat.popularity)[::-1]
    assert top[:50].sum() > 0.3
    # category medians follow the reference table's ordering (electronics dearest, grocery cheapest)
    med = {name: np.median(cat.price[cat.category == i]) for i, name in enumerate(cat.category_names)}
    assert med["electronics"] == max(med.values()) and med["grocery"] == min(med.values())


def test_population_draws_are_stream_reproducible():
    cat = make_reference_catalog(num_items=500)
    pop = ShopperPopulation(cat)
    a, b = SessionStreams(100), SessionStreams(100)
    keys = np.arange(1, 101, dtype=np.uint64)
    a.set_keys(np.arange(100), keys)
    b.set_keys(np.arange(100), keys)
    pa, pb = pop.sample(a, np.arange(100)), pop.sample(b, np.arange(100))
    np.testing.assert_array_equal(pa.interest, pb.interest)
    np.testing.assert_allclose(np.linalg.norm(pa.interest, axis=1), 1.0)
    assert (pa.budget > 0).all() and (pa.patience > 0).all()
    # channel mix: app is the biggest channel
    big = ShopperPopulation(cat).sample(_streams(20000), np.arange(20000))
    share = np.bincount(big.channel, minlength=3) / 20000
    assert abs(share[0] - 0.55) < 0.02 and share[2] < share[1] < share[0]


def _streams(n):
    s = SessionStreams(n)
    s.set_keys(np.arange(n), np.arange(7, 7 + n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    return s


def test_stream_uniforms_look_uniform():
    u = _streams(1000).uniform(100)
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.005  # 100k draws: sd of mean ~0.0009
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    chi2 = ((counts - 10000) ** 2 / 10000).sum()
    assert chi2 < 40  # 9 dof: p ~ 1e-5


def _resave(path, tmp_path, name, **change):
    arrays = dict(np.load(path))
    arrays.update(change)
    for key in [k for k, v in change.items() if v is None]:
        del arrays[key]
    np.savez(tmp_path / name, **arrays)
    return tmp_path / name


def test_unreadable_catalog_files_name_file_and_problem(tmp_path):
    import json

    path = make_reference_catalog(num_items=50).save(tmp_path / "c.npz")
    with pytest.raises(IsADirectoryError, match=r"catalog file '.*' is a directory; expected a .npz catalog file"):
        Catalog.load(tmp_path)
    with pytest.raises(IsADirectoryError, match="is a directory"):  # the env's option, not "does not exist"
        load_catalog(str(tmp_path))
    data = path.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"trunc.npz' is not a readable .npz catalog \(truncated or another format\?\)"):
        Catalog.load(tmp_path / "trunc.npz")
    header = json.loads(str(np.load(path)["header"]))
    cases = [
        ({"header": np.array("not json{")}, r"has a header that is not JSON"),
        ({"header": np.array(json.dumps([1, 2]))}, r"has a JSON header of type list; expected an object"),
        ({"header": np.array(json.dumps({k: v for k, v in header.items() if k != "category_names"}))},
         r"header needs 'category_names', a list of strings, got None"),
        ({"header": np.array(json.dumps(dict(header, format="other")))}, r"has format 'other', expected 'ecomsim-catalog-v1'"),
        ({"header": np.arange(3)}, r"has a header array of dtype int64 and shape \(3,\); expected one JSON string"),
        ({"price": None}, r"lacks arrays \['price'\]"),
        ({"extra": np.ones(3)}, r"has unexpected arrays \['extra'\]"),
        ({"price": -np.ones(50)}, r"is invalid: catalog column 'price' must be > 0, got -1.0 at row 0"),
    ]
    for i, (change, match) in enumerate(cases):
        with pytest.raises(ValueError, match=match):
            Catalog.load(_resave(path, tmp_path, f"bad{i}.npz", **change))
