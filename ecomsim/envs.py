"""Gymnasium views of the batched core: :class:`EcomEnv` (one session) and :class:`EcomVectorEnv`.

## Description
An online shop recommends products to a shopper. Each step the shop retrieves
``num_candidates`` candidates (see ``ecomsim.sim.core``); the agent shows one of them
(``ecomsim/Recommend-v0``) or a slate of ``slate_size`` (``ecomsim/Slate-v0``), and
the shopper clicks, adds to cart, buys, or leaves, as the shopper model says
(``user_model``: the parametric reference world or the learned DNN).

## Action Space
* ``Recommend-v0``: ``Discrete(num_candidates)``, the candidate index to show.
* ``Slate-v0``: ``MultiDiscrete([num_candidates] * slate_size)``, candidate index per
  slot, top slot first. A candidate picked twice in one slate is shown once, in its
  first slot; the later slot stays empty (no impression, no reward), so duplicates
  waste a slot but are legal.

## Observation Space
A flat ``float32`` Box of ``obs_dim`` features with finite bounds: the portrait, the
session state, then one block per candidate. Every feature's name, bounds and
definition, in order, are in one table, ``ecomsim.sim.observation.FEATURES``; for an env,
``env.unwrapped.core.layout`` has the names (``portrait_names``, ``session_names``,
``candidate_names``) and the ``Box``.

## Rewards
``reward="purchase"`` (default): items bought this step; ``"revenue"``: currency
units bought this step; ``"click"``: items clicked this step. The score of a policy is
conversion (see ``ecomsim.metrics``).

## Episode End
Terminated when the shopper leaves; truncated after ``max_steps`` steps.

## Info
``items`` (shown item ids, -1 for empty slots), ``clicked`` / ``carted`` /
``purchased`` (per slot), ``clicks``, ``carts``, ``purchases``, ``revenue``, ``left``,
and the session totals so far: ``session_impressions``, ``session_clicks``,
``session_carts``, ``session_purchases``, ``session_revenue``, ``session_length``.

## Catalogs
``catalog="default"`` (the shipped GAN-sampled catalog), ``"reference"``, a path, or
``"gan"``: a fresh catalog drawn from the GAN generator (``catalog_generator``) at
every seeded ``reset`` (and every ``catalog_refresh`` unseeded resets when that is
``K >= 1``), with ``category_mix``, ``price_band`` and ``catalog_seed_range``. The
catalog seed comes from ``np_random`` right after the session key, so the same
seed gives the same catalog bit for bit; ``env.unwrapped.catalog_seed`` holds it.
The vector env's sub-envs share one catalog: it is drawn in ``reset()`` from the
generator a single env seeded with ``seed`` (sub-env 0's seed) would use, so
sub-env 0 still equals that single env; it never changes at an autoreset (other
sessions are mid-episode on it). Vector training on many catalogs: call ``reset()``
between rollouts, or use a vector of single envs.

## Inventory
``inventory={...}`` (``StoreConfig`` fields; off by default): the sessions shop in a
store with per-item stock (``ecomsim.store.shop``; what stock does to shoppers:
``ecomsim.sim.stock``). The observation gains ``out_of_stock`` and ``low_stock`` per
candidate, the info ``unavailable`` / ``lost`` per slot and ``action_mask``, the env
``action_masks()`` (sb3-contrib's ``MaskablePPO``). In a vector env **all sub-envs are
shoppers of one store and share its stock** (the lowest sub-env index gets a last unit
wanted by several), so sub-env ``i`` no longer equals a single env: what holds is the
store's books (stock never negative, sales equal the stock taken, deliveries on their
day; ``tests/store/test_shop.py``). docs/inventory.md has the whole story.

## Version History
* v0: initial release.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from ecomsim.catalog import Catalog, load_catalog
from ecomsim.catalog_source import (
    CONSTRUCTION_SEED,
    CatalogSource,
    CatalogSupport,
    draw_catalog,
    draw_catalog_seed,
    load_catalog_source,
    source_support,
)
from ecomsim.config import EnvConfig, check_device
from ecomsim.sim.core import SimulationCore, StepOutcome
from ecomsim.sim.streams import key_from_generator, keys_from_seeds
from ecomsim.shoppers.base import ShopperModel

SESSION_KEYS = (
    "session_impressions",
    "session_clicks",
    "session_carts",
    "session_purchases",
    "session_revenue",
    "session_length",
)


def make_shopper(config: EnvConfig) -> ShopperModel:
    """The shopper model named by ``config.user_model``."""
    if config.user_model == "reference":
        from ecomsim.shoppers.reference import ReferenceWorld

        return ReferenceWorld()
    from ecomsim.shoppers.behavior import load_behavior_model  # the learned DNN; imported lazily (torch)

    return load_behavior_model(device=config.device)


def env_catalog(name: str, num_items: int | None) -> Catalog:
    """The catalog ``name`` (``EnvConfig.catalog``), cut to its first ``num_items`` items when given."""
    catalog = load_catalog(name)
    if num_items is not None:
        if num_items > catalog.num_items:
            raise ValueError(f"num_items must be <= the catalog's {catalog.num_items} items, got {num_items}")
        catalog = catalog.subset(slice(0, num_items))
    return catalog


def build_core(config: EnvConfig, num_envs: int, catalog: Catalog | None = None, shopper: ShopperModel | None = None,
               catalog_support: CatalogSupport | None = None) -> SimulationCore:
    """The core of an env: ``catalog`` (else ``config.catalog``) and ``shopper`` (else ``config.user_model``);
    ``catalog_support``: what catalogs ``set_catalog`` may bring later (``catalog="gan"``)."""
    check_device(config.device)
    if catalog is None:
        catalog = env_catalog(config.catalog, config.num_items)
    if shopper is None:
        shopper = make_shopper(config)
    stock = None
    if config.inventory is not None:
        from ecomsim.store.shop import SessionEnvStore  # the store layer: only with inventory

        stock = SessionEnvStore(config.store_config(), catalog)
    return SimulationCore(config, catalog, shopper, num_envs, catalog_support, stock=stock)


class _GanCatalogs:
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


def _gan_core(config: EnvConfig, num_envs: int, catalog_obj: Catalog | None, shopper_obj: ShopperModel | None,
              source: CatalogSource | None) -> tuple[_GanCatalogs | None, SimulationCore]:
    """``(catalog draws or None, the env's core)``."""
    if config.catalog != "gan" or catalog_obj is not None:
        return None, build_core(config, num_envs, catalog_obj, shopper_obj)
    gan = _GanCatalogs(config, source)
    return gan, build_core(config, num_envs, gan.draw(CONSTRUCTION_SEED), shopper_obj, gan.support)


def env_spaces(core: SimulationCore) -> tuple[spaces.Space, spaces.Box]:
    """``(action space, observation space)`` of one session of ``core``."""
    obs_space = core.layout.space()
    if core.config.mode == "recommend":
        act_space: spaces.Space = spaces.Discrete(core.num_candidates)
    else:
        act_space = spaces.MultiDiscrete(np.full(core.slate_size, core.num_candidates, dtype=np.int64))
    return act_space, obs_space


def step_info(core: SimulationCore, out: StepOutcome | None) -> dict[str, np.ndarray]:
    """Batched info dict: raw outcome of the step plus session totals."""
    n, k = core.num_envs, core.slate_size
    if out is None:
        info: dict[str, np.ndarray] = {
            "items": np.full((n, k), -1, dtype=np.int64),
            "clicked": np.zeros((n, k), dtype=bool),
            "carted": np.zeros((n, k), dtype=bool),
            "purchased": np.zeros((n, k), dtype=bool),
            "clicks": np.zeros(n, dtype=np.int64),
            "carts": np.zeros(n, dtype=np.int64),
            "purchases": np.zeros(n, dtype=np.int64),
            "revenue": np.zeros(n),
            "left": np.zeros(n, dtype=bool),
        }
    else:
        info = {
            "items": out.items,
            "clicked": out.clicked,
            "carted": out.carted,
            "purchased": out.purchased,
            "clicks": out.clicks,
            "carts": out.carts,
            "purchases": out.purchases,
            "revenue": out.revenue,
            "left": out.left,
        }
    s = core.session
    totals = (s.impressions, s.clicks, s.carts, s.purchases, s.revenue, s.step_count)
    info.update((key, arr.copy()) for key, arr in zip(SESSION_KEYS, totals))
    if core.stock is not None:
        info.update(stock_info(core, out))
    return info


def stock_info(core: SimulationCore, out: StepOutcome | None) -> dict[str, np.ndarray]:
    """Inventory only: ``unavailable`` and ``lost`` ``(N, k)`` bool (see ``StepOutcome``) and ``action_mask``."""
    empty = np.zeros((core.num_envs, core.slate_size), dtype=bool)
    return {"unavailable": empty if out is None else out.unavailable, "lost": empty if out is None else out.lost,
            "action_mask": core.action_masks()}


def _info_one(core: SimulationCore, out: StepOutcome | None) -> dict[str, Any]:
    """``step_info`` of a one-session core, row 0 (a step's built directly: it runs every step of a single env)."""
    if out is None or core.stock is not None:
        return {key: value[0] for key, value in step_info(core, out).items()}
    # one dict literal, the SESSION_KEYS spelt out: a loop over them is measurably slower on this hot path
    s = core.session
    return {
        "items": out.items[0], "clicked": out.clicked[0], "carted": out.carted[0], "purchased": out.purchased[0],
        "clicks": out.clicks[0], "carts": out.carts[0], "purchases": out.purchases[0],
        "revenue": out.revenue[0], "left": out.left[0],
        "session_impressions": s.impressions[0], "session_clicks": s.clicks[0],
        "session_carts": s.carts[0], "session_purchases": s.purchases[0],
        "session_revenue": s.revenue[0], "session_length": s.step_count[0],
    }


class EcomEnv(gym.Env):
    """One shopping session at a time: a core of one (see the module docstring).

    Args:
        catalog_obj: an in-memory :class:`Catalog` (overrides ``catalog``).
        shopper_obj: an in-memory :class:`ShopperModel` (overrides ``user_model``).
        catalog_source: what ``catalog="gan"`` draws from (default: ``catalog_generator``, loaded lazily).
        **kwargs: :class:`EnvConfig` fields; unknown keys fail with a suggestion.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, render_mode: str | None = None, catalog_obj: Catalog | None = None,
                 shopper_obj: ShopperModel | None = None, catalog_source: CatalogSource | None = None,
                 **kwargs: Any) -> None:
        self.config = EnvConfig.from_kwargs(kwargs)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.render_mode = render_mode
        self._gan, self.core = _gan_core(self.config, 1, catalog_obj, shopper_obj, catalog_source)
        self.action_space, self.observation_space = env_spaces(self.core)
        self._needs_reset = True
        self._last_info: dict[str, Any] = {}
        self._slot = np.zeros((1, 1), dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        first = not hasattr(self, "_keyed")
        super().reset(seed=seed)
        keys = key_from_generator(self.np_random, 1) if (seed is not None or first) else None
        self._keyed = True
        if self._gan is not None and self._gan.due(seeded=seed is not None or first):
            self.core.set_catalog(self._gan.draw(draw_catalog_seed(self.np_random, self.config.catalog_seed_range)))
        self.core.reset(np.zeros(1, dtype=np.int64), keys)
        self._needs_reset = False
        return self.core.observe()[0], _info_one(self.core, None)

    @property
    def catalog_seed(self) -> int | None:
        """Seed of the current ``catalog="gan"`` catalog (``None`` for other catalogs)."""
        return None if self._gan is None else self._gan.seed

    def action_masks(self) -> np.ndarray:
        """``(num_candidates,)`` (``Slate-v0``: ``(slate_size * num_candidates,)``) bool: the candidates in stock,
        for sb3-contrib's ``MaskablePPO`` (all true without inventory; see ``ecomsim.sim.stock.candidate_mask``)."""
        return self.core.action_masks()[0]

    def step(self, action):
        if self._needs_reset:
            raise RuntimeError("call reset() before step(): the episode has ended or never started")
        m, k = self.core.num_candidates, self.core.slate_size
        if (type(action) is int or isinstance(action, np.integer)) and self.config.mode == "recommend" and 0 <= action < m:
            self._slot[0, 0] = action  # a valid index: nothing to check (the core only reads it)
            return self._finish_step(self.core.step(self._slot))
        arr = np.asarray(action)
        if self.config.mode == "recommend":
            if arr.shape not in ((), (1,)):
                raise ValueError(f"action must be one candidate index, an integer in [0, {m - 1}], got shape {arr.shape}")
            slots = arr.reshape(1)
        else:
            if arr.shape != (k,):
                raise ValueError(f"action must have shape (slate_size={k},) with integers in [0, {m - 1}], got shape {arr.shape}")
            slots = arr.reshape(1, k)
        slots = self.core.check_actions(slots)
        return self._finish_step(self.core.step(slots))

    def _finish_step(self, out: StepOutcome):
        info = _info_one(self.core, out)
        terminated, truncated = bool(out.terminated[0]), bool(out.truncated[0])
        self._needs_reset = terminated or truncated
        self._last_info = info
        return out.obs[0], float(out.reward[0]), terminated, truncated, info

    def render(self):
        if self.render_mode != "ansi":
            return None
        s = self.core.session
        return (
            f"step {int(s.step_count[0])}: clicks {int(s.clicks[0])}, carts {int(s.carts[0])}, "
            f"purchases {int(s.purchases[0])}, revenue {float(s.revenue[0]):.2f}, last shown {self._last_info.get('items')}"
        )


class EcomVectorEnv(VectorEnv):
    """``num_envs`` sessions stepped together by one core call (Gymnasium ``NEXT_STEP`` autoreset).

    Sub-env ``i`` reset with ``seed=s`` follows exactly the trajectory of a single
    :class:`EcomEnv` reset with ``seed=s + i`` (each session has its own random stream).
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, catalog_obj: Catalog | None = None,
                 shopper_obj: ShopperModel | None = None, catalog_source: CatalogSource | None = None,
                 **kwargs: Any) -> None:
        self.config = EnvConfig.from_kwargs(kwargs)
        self.num_envs = num_envs
        self._gan, self.core = _gan_core(self.config, num_envs, catalog_obj, shopper_obj, catalog_source)
        self.single_action_space, self.single_observation_space = env_spaces(self.core)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._started = False
        self._all = np.arange(num_envs)

    def _sub_keys(self, seed: int | list[int | None] | None) -> np.ndarray | None:
        n = self.num_envs
        if seed is None:
            return None
        if isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(n)]
        else:
            seeds = list(seed)
            if len(seeds) != n:
                raise ValueError(f"seed must be an int or a list of num_envs={n} seeds, got a list of {len(seeds)}")
        return keys_from_seeds(seeds)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed if isinstance(seed, (int, np.integer)) else None)
        keys = self._sub_keys(seed)
        if keys is None and not self._started:
            keys = key_from_generator(self.np_random, self.num_envs)
        if self._gan is not None and self._gan.due(seeded=seed is not None or not self._started):
            self.core.set_catalog(self._gan.draw(draw_catalog_seed(self._catalog_rng(seed), self.config.catalog_seed_range)))
        self._started = True
        self.core.reset(self._all, keys)
        self._autoreset[:] = False
        return self.core.observe(), step_info(self.core, None)

    @property
    def catalog_seed(self) -> int | None:
        """Seed of the shared ``catalog="gan"`` catalog (``None`` for other catalogs)."""
        return None if self._gan is None else self._gan.seed

    def action_masks(self) -> np.ndarray:
        """``(num_envs, num_candidates)`` (slates: ``(num_envs, slate_size * num_candidates)``) bool: candidates in
        stock (all true without inventory)."""
        return self.core.action_masks()

    def _catalog_rng(self, seed: int | list[int | None] | None) -> np.random.Generator:
        """The generator a single env seeded like sub-env 0 draws its catalog seed from."""
        first = seed if seed is None or isinstance(seed, (int, np.integer)) else list(seed)[0]
        if first is None:
            return self.np_random
        gen, _ = gym.utils.seeding.np_random(int(first))
        key_from_generator(gen, 1)  # the session key a single env draws first
        return gen

    def step(self, actions):
        if not self._started:
            raise RuntimeError("call reset() before step()")
        slots = self.core.check_actions(actions)
        # NEXT_STEP autoreset: sessions that ended last step start anew (new keys derived from
        # the ended streams, exactly as a single env's reset()) and the step skips them: their
        # action is ignored, they show nothing and earn nothing, and are only observed.
        reset_rows = np.flatnonzero(self._autoreset)
        self.core.reset(reset_rows)
        out = self.core.step(slots, skip=self._autoreset if len(reset_rows) else None)
        self._autoreset = out.terminated | out.truncated
        return out.obs, out.reward, out.terminated, out.truncated, step_info(self.core, out)
