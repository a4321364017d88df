"""Catalog sources: where ``catalog="gan"`` envs get a fresh catalog from.

``ecomsim`` never imports ``generators`` at module level (imports point one way,
``generators -> ecomsim``). An env is either handed a source (``catalog_source=``,
anything with this protocol) or loads one lazily by name here, importing
``generators`` at call time.

Catalog shift, as an experiment: train on catalogs drawn with one
``category_mix`` / ``catalog_seed_range`` and evaluate on another, e.g.::

    train_kwargs = dict(catalog="gan", catalog_seed_range=[0, 10_000], category_mix={"fashion": 1, "shoes": 1})
    eval_kwargs = dict(catalog="gan", catalog_seed_range=[10_000, 20_000])   # unseen catalogs, training mix
    eval_kwargs = dict(catalog="gan", catalog_seed_range=[10_000, 20_000],
                       category_mix={"electronics": 2, "home": 1})          # unseen catalogs, shifted mix

The two seed ranges are disjoint, so no evaluation catalog was seen in training.
"""

from __future__ import annotations

import functools
import importlib
import math
from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from ecomsim.catalog import Catalog

#: catalog size when ``catalog="gan"`` and ``num_items`` is unset (the shipped default catalog's size)
DEFAULT_GAN_ITEMS = 2000
#: seed of the catalog a ``catalog="gan"`` env holds before its first ``reset``
CONSTRUCTION_SEED = 0


@dataclass(frozen=True)
class CatalogSupport:
    """What every catalog a source can draw satisfies (the observation bounds of ``catalog="gan"`` envs).

    Attributes:
        log_price: ``(low, high)`` of the log prices, log currency units.
        log_popularity_ratio: at most ``log(popularity_i / popularity_j)`` for any two items.
    """

    log_price: tuple[float, float]
    log_popularity_ratio: float

    def within_band(self, price_band: Sequence[float]) -> "CatalogSupport":
        """The support of draws kept inside ``price_band = [low, high]`` (currency units)."""
        lo, hi = self.log_price
        band_lo = math.log(price_band[0]) if price_band[0] > 0 else -math.inf
        return CatalogSupport((max(lo, band_lo), min(hi, math.log(price_band[1]))), self.log_popularity_ratio)


#: what ``Catalog``'s validation alone guarantees (positive finite prices; positive popularities summing
#: to 1, so each in [5e-324, 1]): the bounds of a source that does not state its support
ANY_CATALOG = CatalogSupport((math.log(5e-324), math.log(1.7976931348623157e308)), -math.log(5e-324))


def source_support(source: "CatalogSource", price_band: Sequence[float] | None) -> CatalogSupport:
    """The support of what ``source`` draws under ``price_band``: its ``support()`` when it has one, else
    :data:`ANY_CATALOG` (honest, but wide)."""
    support = source.support() if callable(getattr(source, "support", None)) else ANY_CATALOG
    return support if price_band is None else support.within_band(price_band)


@runtime_checkable
class CatalogSource(Protocol):
    """Anything that draws catalogs reproducibly from a seed (``generators.CatalogGAN`` is one).

    A source may also have ``support() -> CatalogSupport`` (what any catalog it draws
    satisfies): ``catalog="gan"`` envs then get tight observation bounds (else
    :data:`ANY_CATALOG`'s); a drawn catalog outside them is an error at reset.
    """

    category_names: tuple[str, ...]

    def sample(self, num_items: int, seed: int, category_mix: Mapping[str, float] | None = None,
               price_band: tuple[float, float] | None = None) -> Catalog: ...


@functools.lru_cache(maxsize=8)
def load_catalog_source(name: str = "default", device: str = "cpu") -> CatalogSource:
    """The generator named ``name``: ``"default"`` (shipped with ``generators``) or a path to a generator card.

    Cached: sampling never changes a generator, so envs can share one.
    """
    try:
        sampler = importlib.import_module("generators.sampler")
    except ModuleNotFoundError as exc:  # an install without the generators package
        raise ModuleNotFoundError(
            f"catalog='gan' needs the 'generators' package (shipped with ecomsim), which failed to import: {exc}"
        ) from exc
    return sampler.CatalogGAN.load(None if name == "default" else name, device=device)


def draw_catalog_seed(rng: np.random.Generator, seed_range: Sequence[int] | None) -> int:
    """A catalog seed from the env's generator: uniform in ``[low, high)`` or over 63 bits."""
    if seed_range is None:
        return int(rng.integers(0, 2**63 - 1))
    low, high = seed_range
    return int(rng.integers(low, high))


def draw_catalog(source: CatalogSource, num_items: int | None, seed: int,
                 category_mix: Mapping[str, float] | None, price_band: Sequence[float] | None) -> Catalog:
    band = None if price_band is None else (float(price_band[0]), float(price_band[1]))
    return source.sample(num_items or DEFAULT_GAN_ITEMS, seed, category_mix, band)
