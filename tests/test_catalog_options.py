"""Catalog options of the env: "default", "gan" (seeded draws, refresh, mix), paths, config errors."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import ecomsim  # noqa: F401  (registers the ids)
from ecomsim.catalog import REFERENCE_CATEGORIES, load_catalog, make_reference_catalog
from ecomsim.catalog_source import CatalogSource, load_catalog_source
from ecomsim.config import EnvConfig
from ecomsim.envs import EcomEnv, EcomVectorEnv

GAN = {"catalog": "gan", "num_items": 400}


def test_default_catalog_is_the_shipped_gan_sample():
    assert EnvConfig().catalog == "default"
    env = EcomEnv()
    assert env.core.catalog.equals(load_catalog("default"))


def test_gan_same_seed_same_catalog_and_trajectory():
    env = EcomEnv(**GAN)
    obs1, _ = env.reset(seed=11)
    cat1, seed1 = env.core.catalog, env.catalog_seed
    steps1 = [env.step(i % 20)[:2] for i in range(10)]
    obs2, _ = env.reset(seed=11)
    assert env.core.catalog.equals(cat1) and env.catalog_seed == seed1
    assert np.array_equal(obs1, obs2)
    steps2 = [env.step(i % 20)[:2] for i in range(10)]
    for (o1, r1), (o2, r2) in zip(steps1, steps2):
        assert np.array_equal(o1, o2) and r1 == r2
    other = EcomEnv(**GAN)
    other.reset(seed=11)
    assert other.core.catalog.equals(cat1)  # a fresh env agrees too
    other.reset(seed=12)
    assert not other.core.catalog.equals(cat1)


def test_gan_refresh_rule():
    env = EcomEnv(**GAN)  # catalog_refresh=0: only seeded resets draw
    env.reset(seed=0)
    cat = env.core.catalog
    env.reset()
    env.reset()
    assert env.core.catalog is cat
    env = EcomEnv(catalog_refresh=2, **GAN)
    env.reset(seed=0)
    a = env.core.catalog
    env.reset()
    assert env.core.catalog is a
    env.reset()
    assert env.core.catalog is not a


def test_vector_env_shares_one_catalog_matching_sub_env_zero():
    single = EcomEnv(**GAN)
    obs, _ = single.reset(seed=5)
    vec = EcomVectorEnv(num_envs=3, **GAN)
    vobs, _ = vec.reset(seed=5)
    assert vec.core.catalog.equals(single.core.catalog)
    assert np.array_equal(vobs[0], obs)
    cat = vec.core.catalog
    for _ in range(120):  # autoresets happen; the catalog must not change under running sessions
        vec.step(np.zeros(3, dtype=np.int64))
    assert vec.core.catalog is cat


def test_category_mix_price_band_and_seed_range():
    mix = {"books": 1, "grocery": 3}
    env = EcomEnv(category_mix=mix, price_band=[5, 100], catalog_seed_range=[100, 110], **GAN)
    env.reset(seed=0)
    cat = env.core.catalog
    counts = np.bincount(cat.category, minlength=cat.num_categories)
    assert counts[cat.category_names.index("books")] == 100 and counts[cat.category_names.index("grocery")] == 300
    assert cat.price.min() >= 5 and cat.price.max() <= 100
    assert 100 <= env.catalog_seed < 110


def test_handed_catalog_source_is_used():
    calls = []

    class Source:
        category_names = tuple(REFERENCE_CATEGORIES)

        def sample(self, num_items, seed, category_mix=None, price_band=None):
            calls.append(seed)
            return make_reference_catalog(num_items=num_items, seed=seed % 1000)

    assert isinstance(Source(), CatalogSource)
    env = EcomEnv(catalog_source=Source(), **GAN)
    env.reset(seed=1)
    assert len(calls) == 2 and env.core.catalog.num_items == 400  # construction + seeded reset


def test_checkers_and_gym_make_with_gan():
    env = gym.make("ecomsim/Recommend-v0", **GAN)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped, skip_render_check=True)
    vec = gym.make_vec("ecomsim/Slate-v0", num_envs=2, **GAN)
    obs, _ = vec.reset(seed=0)
    assert obs.shape[0] == 2


def test_catalog_path(tmp_path):
    path = load_catalog_source().sample(300, seed=4).save(tmp_path / "mine.npz")
    env = EcomEnv(catalog=str(path))
    assert env.core.catalog.num_items == 300


def test_set_catalog_refuses_other_layout():
    env = EcomEnv(catalog="reference")
    other = make_reference_catalog(num_items=100, categories={"a": (10.0, 0.5), "b": (20.0, 0.5)})
    with pytest.raises(ValueError, match=r"same category names and embedding dim.*got \['a', 'b'\]"):
        env.core.set_catalog(other)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"catalog": "gan", "category_mix": {"fashon": 1}}, r"category_mix has unknown category 'fashon'.*Did you mean 'fashion'"),
        ({"category_mix": {"fashion": 1}}, r"category_mix applies to catalog='gan' only, got category_mix=\{'fashion': 1\} with catalog='default'"),
        ({"catalog": "gan", "category_mix": {"fashion": -1}}, r"category_mix\['fashion'\] must be a finite number >= 0, got -1"),
        ({"catalog": "gan", "category_mix": {"fashion": 0}}, "positive share somewhere"),
        ({"catalog": "gan", "price_band": [50, 10]}, r"price_band must be \[low, high\] with 0 <= low < high.*got \[50, 10\]"),
        ({"catalog": "gan", "catalog_seed_range": [5, 5]}, r"catalog_seed_range must be \[low, high\).*got \[5, 5\]"),
        ({"catalog": "gan", "catalog_refresh": -1}, r"catalog_refresh must be in \[0, 1000000000\], got -1"),
        ({"catalog_refresh": 3}, r"catalog_refresh applies to catalog='gan' only"),
    ],
)
def test_config_errors(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        EnvConfig(**kwargs)


def test_unknown_key_suggests():
    with pytest.raises(TypeError, match="Did you mean 'category_mix'"):
        EnvConfig.from_kwargs({"catagory_mix": {"books": 1}})


def test_gan_catalogs_work_with_the_dnn_shoppers():
    try:
        env = EcomEnv(user_model="dnn", **GAN)
    except (FileNotFoundError, ModuleNotFoundError, ImportError) as exc:
        pytest.skip(f"DNN behaviour model not available: {exc}")
    env.reset(seed=0)
    env.reset(seed=1)  # a new catalog: the DNN re-binds to its columns
    for i in range(5):
        obs, r, term, trunc, info = env.step(i)
        assert np.isfinite(obs).all()
        if term or trunc:
            break
