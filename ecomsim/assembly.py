"""How an env is put together from its :class:`~ecomsim.config.EnvConfig`: the catalog, the shopper model,
the store (with inventory), the core, the spaces, and what the env views add (``catalog="gan"`` draws,
explanations). The views themselves are in :mod:`ecomsim.envs`; every other caller that needs a core
(``agents``, ``ecomsim.lifecycle``, ``ecomsim.store``, the shard workers) builds it here too.
"""

from __future__ import annotations

import functools

import numpy as np
from gymnasium import spaces

from ecomsim.catalog import Catalog, load_catalog
from ecomsim.catalog_source import (
    CONSTRUCTION_SEED,
    DEFAULT_GAN_ITEMS,
    CatalogSource,
    CatalogSupport,
    draw_catalog,
    load_catalog_source,
    source_support,
)
from ecomsim.config import EnvConfig, check_device
from ecomsim.errors import check_range
from ecomsim.sim import memory
from ecomsim.sim.core import SimulationCore
from ecomsim.shoppers.base import ShopperModel


def make_shopper(config: EnvConfig) -> ShopperModel:
    """The shopper model named by ``config.user_model``."""
    if config.user_model == "reference":
        from ecomsim.shoppers.reference import ReferenceWorld

        return ReferenceWorld()
    if config.uses_ensemble:
        from ecomsim.shoppers.ensemble import ensemble_model  # the behaviour ensemble; imported lazily (torch)

        return ensemble_model(config.shopper_sampling, config.uncertainty_penalty, config.ensemble_member,
                              None if config.ensemble == "default" else config.ensemble, config.device)
    from ecomsim.shoppers.behavior import load_behavior_model  # the learned DNN; imported lazily (torch)

    return load_behavior_model(device=config.device)


#: what a vector env holds per session besides its core: its batched observation space's low and high bounds
VECTOR_VIEW = memory.ViewBytes(observations=2)


def env_catalog(name: str, num_items: int | None) -> Catalog:
    """The catalog ``name`` (``EnvConfig.catalog``), cut to its first ``num_items`` items when given."""
    catalog = load_catalog(name)
    if num_items is not None:
        if num_items > catalog.num_items:
            raise ValueError(f"num_items must be <= the catalog's {catalog.num_items} items, got {num_items}")
        catalog = catalog.subset(slice(0, num_items))
    return catalog


def build_core(config: EnvConfig, num_envs: int, catalog: Catalog | None = None, shopper: ShopperModel | None = None,
               catalog_support: CatalogSupport | None = None,
               view: memory.ViewBytes = memory.ViewBytes()) -> SimulationCore:
    """The core of an env: ``catalog`` (else ``config.catalog``) and ``shopper`` (else ``config.user_model``);
    ``catalog_support``: what catalogs ``set_catalog`` may bring later (``catalog="gan"``); ``view``: what the env
    view holds per session. A configuration that cannot fit in memory is refused before the core is allocated
    (``ecomsim.sim.memory``)."""
    check_device(config.device)
    num_envs = check_range("num_envs", num_envs, 1, None, integer=True)
    given = catalog is not None
    if catalog is None:
        catalog = env_catalog(config.catalog, config.num_items)
    if shopper is None:
        shopper = make_shopper(config)
    dims = memory.CatalogDims(catalog.num_items, catalog.num_categories, catalog.embed_dim)
    memory.check_env(config, num_envs, dims, shopper, view, catalog_support is not None,
                     "catalog_obj" if given and catalog_support is None else None)
    stock = None
    if config.inventory is not None:
        from ecomsim.store.shop import SessionEnvStore  # the store layer: only with inventory

        stock = SessionEnvStore(config.store_config(), catalog)
    return SimulationCore(config, catalog, shopper, num_envs, catalog_support, stock=stock)


class GanCatalogs:
    """When and what a ``catalog="gan"`` env draws (rules in the module docstring)."""

    def __init__(self, config: EnvConfig, source: CatalogSource | None) -> None:
        self.config = config
        if source is None:
            source = load_catalog_source(config.catalog_generator, check_device(config.device))
        self.source = source
        self.support = source_support(source, config.price_band)
        self.episodes = 0  # unseeded resets since the last draw
        self.seed = CONSTRUCTION_SEED

    def draw(self, seed: int) -> Catalog:
        c = self.config
        self.seed = seed
        return draw_catalog(self.source, c.num_items, seed, c.category_mix, c.price_band)

    def due(self, seeded: bool) -> bool:
        if not seeded:
            self.episodes += 1
            if not (self.config.catalog_refresh and self.episodes >= self.config.catalog_refresh):
                return False
        self.episodes = 0
        return True


def gan_core(config: EnvConfig, num_envs: int, catalog_obj: Catalog | None, shopper_obj: ShopperModel | None,
              source: CatalogSource | None, view: memory.ViewBytes = memory.ViewBytes(),
              num_workers: int = 1) -> tuple[GanCatalogs | None, SimulationCore]:
    """``(catalog draws or None, the env's core)``; a ``catalog="gan"`` configuration that cannot fit is refused
    before the first draw; ``num_workers != 1``: a core in worker processes (``ecomsim.shards``; the catalog
    draws stay here, in the parent)."""
    build = functools.partial(build_core, view=view)
    sharded = isinstance(num_workers, bool) or num_workers != 1  # ShardedCore names a bad value
    if sharded:
        from ecomsim.shards import ShardedCore  # imported lazily: it imports this module in the workers

        build = functools.partial(ShardedCore, num_workers=num_workers)
    if config.catalog != "gan" or catalog_obj is not None:
        return None, build(config, num_envs, catalog_obj, shopper_obj)
    gan = GanCatalogs(config, source)
    shopper = make_shopper(config) if shopper_obj is None else shopper_obj
    embed_dim = getattr(gan.source, "embed_dim", None)  # a source without it: the first draw is checked instead
    if embed_dim is not None:
        dims = memory.CatalogDims(config.num_items or DEFAULT_GAN_ITEMS, len(gan.source.category_names), embed_dim)
        memory.check_env(config, check_range("num_envs", num_envs, 1, None, integer=True), dims, shopper, view, True)
    # the workers build their own shopper unless one was given
    return gan, build(config, num_envs, gan.draw(CONSTRUCTION_SEED), shopper_obj if sharded else shopper, gan.support)


def env_spaces(core: SimulationCore) -> tuple[spaces.Space, spaces.Box]:
    """``(action space, observation space)`` of one session of ``core``."""
    obs_space = core.layout.space()
    if core.config.mode == "recommend":
        act_space: spaces.Space = spaces.Discrete(core.num_candidates)
    else:
        act_space = spaces.MultiDiscrete(np.full(core.slate_size, core.num_candidates, dtype=np.int64))
    return act_space, obs_space


def step_explainer(core: SimulationCore, config: EnvConfig):
    """What explains each step before it is taken (``explain=True``); nothing otherwise (the default: no cost)."""
    if not config.explain:
        return None
    from ecomsim.explain.why import StepExplainer  # imported only when asked for (torch, and Captum for the DNN)

    return StepExplainer(core, config.explain_reasons, reasons=True)
