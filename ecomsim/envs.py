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
Terminated when the shopper leaves; truncated after ``max_steps`` steps. No ``TimeLimit`` is
registered (it could not see a ``max_steps`` option, and it flags ``truncated`` also on a shopper who
leaves at the last step): ``env.spec.max_episode_steps`` equals ``max_steps`` for every env
``gym.make`` builds, so wrappers that read it (``TimeAwareObservation``) see the truth.
``gym.make(id, max_episode_steps=T)`` adds Gymnasium's ``TimeLimit(T)`` (the episode ends at the
earlier of the two); ``make_vec`` passes ``T`` to the vector env, which applies the same rule.

## Info
The raw outcome of the step and the session totals so far (keys in ``ecomsim.info``).

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

## Rendering
``render_mode`` ``"ansi"`` (text), ``"rgb_array"`` (an ``(H, 640, 3)`` uint8 picture of the last step) or
``"human"`` (that picture in a window, or the text printed without a display): ``ecomsim.render``. The
vector env's ``render()`` gives a tuple, one per sub-env (``human``: sub-env 0 shown). Rendering only
reads the state: it never changes a trajectory.

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

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec
from gymnasium.vector import VectorEnv
from gymnasium.vector.utils import batch_space

from ecomsim import render as rendering
from ecomsim.autoreset import AutoresetMode, check_episode_limit, final_entries, parse_autoreset_mode, reset_mask
from ecomsim.catalog import Catalog
from ecomsim.catalog_source import CatalogSource, draw_catalog_seed
from ecomsim.assembly import VECTOR_VIEW, env_spaces, gan_core, step_explainer
from ecomsim.config import EnvConfig
from ecomsim.errors import check_range
from ecomsim.info import info_one, step_info
from ecomsim.inputs import check_action, check_seed, sub_env_seeds
from ecomsim.sim.core import StepOutcome
from ecomsim.sim.streams import key_from_generator, keys_from_seeds
from ecomsim.shoppers.base import ShopperModel

class EcomEnv(gym.Env):
    """One shopping session at a time: a core of one (see the module docstring).

    Args:
        catalog_obj: an in-memory :class:`Catalog` (overrides ``catalog``).
        shopper_obj: an in-memory :class:`ShopperModel` (overrides ``user_model``).
        catalog_source: what ``catalog="gan"`` draws from (default: ``catalog_generator``, loaded lazily).
        **kwargs: :class:`EnvConfig` fields; unknown keys fail with a suggestion.
    """

    metadata = {"render_modes": rendering.RENDER_MODES, "render_fps": rendering.RENDER_FPS}
    _spec: EnvSpec | None = None
    _human: rendering.HumanView | None = None

    def __init__(self, render_mode: str | None = None, catalog_obj: Catalog | None = None,
                 shopper_obj: ShopperModel | None = None, catalog_source: CatalogSource | None = None,
                 **kwargs: Any) -> None:
        self.config = EnvConfig.from_kwargs(kwargs, caller=f"{type(self).__name__}.__init__()")
        self.render_mode = rendering.check_render_mode(render_mode)
        self._human = rendering.HumanView(self.metadata["render_fps"]) if render_mode == "human" else None
        self._gan, self.core = gan_core(self.config, 1, catalog_obj, shopper_obj, catalog_source)
        self.action_space, self.observation_space = env_spaces(self.core)
        self._needs_reset = True
        self._last_info: dict[str, Any] = {}
        self._slot = np.zeros((1, 1), dtype=np.int64)
        self._explainer = step_explainer(self.core, self.config)
        self._why: dict[str, Any] | None = None

    @property
    def spec(self) -> EnvSpec | None:
        """What ``gym.make`` built this env from, ``max_episode_steps`` = ``max_steps`` (see Episode End above);
        ``None`` for an env built directly."""
        return self._spec

    @spec.setter
    def spec(self, value: EnvSpec | None) -> None:
        self._spec = None if value is None else dataclasses.replace(value, max_episode_steps=self.config.max_steps)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        seed = check_seed(seed)
        first = not hasattr(self, "_keyed")
        super().reset(seed=seed)
        keys = key_from_generator(self.np_random, 1) if (seed is not None or first) else None
        self._keyed = True
        if self._gan is not None and self._gan.due(seeded=seed is not None or first):
            self.core.set_catalog(self._gan.draw(draw_catalog_seed(self.np_random, self.config.catalog_seed_range)))
        self.core.reset(np.zeros(1, dtype=np.int64), keys)
        self._needs_reset = False
        self._why = None
        self._last_info = info_one(self.core, None)
        if self._human is not None:
            self.render()
        return self.core.observe()[0], self._last_info

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
        if (type(action) is int or isinstance(action, np.integer)) and self.config.mode == "recommend" \
                and 0 <= action < self.core.num_candidates:
            self._slot[0, 0] = action  # a valid index: nothing to check (the core only reads it)
            if self._explainer is None:
                return self._finish_step(self.core.step(self._slot))
            return self._explained_step(self._slot)
        c = self.core
        slots = check_action(action, self.config.mode, c.num_candidates, c.slate_size)
        if self._explainer is not None:
            return self._explained_step(slots)
        return self._finish_step(c.step(slots))

    def _explained_step(self, slots: np.ndarray):
        """A step explained from the state before it (``explain=True``)."""
        self._why = self._explainer(slots)[0]
        return self._finish_step(self.core.step(slots))

    def _finish_step(self, out: StepOutcome):
        info = info_one(self.core, out)
        if self._explainer is not None:
            info["why"] = self._why
        terminated, truncated = bool(out.terminated[0]), bool(out.truncated[0])
        self._needs_reset = terminated or truncated
        self._last_info = info
        if self._human is not None:
            self.render()
        return out.obs[0], float(out.reward[0]), terminated, truncated, info

    def render(self) -> str | np.ndarray | None:
        """The last step (or reset): ``ansi`` text, an ``rgb_array`` picture, or (``human``) shown, returning None;
        with ``explain=True`` each shown item's top reasons too."""
        if not self._last_info:
            raise RuntimeError("call reset() before render()")
        info = {key: np.asarray(value)[None] for key, value in self._last_info.items() if key != "why"}
        reasons = None
        if self._why is not None:
            from ecomsim.explain.why import slot_reasons  # explain=True: imported already

            reasons = [slot_reasons(self._why, self.core.slate_size)]
        return rendering.render_rows(self.render_mode, self.core, info, [0], self._human, reasons)[0]

    def close(self) -> None:
        if self._human is not None:
            self._human.close()


class EcomVectorEnv(VectorEnv):
    """``num_envs`` sessions stepped together by one core call.

    Sub-env ``i`` reset with ``seed=s`` follows exactly the trajectory of a single
    :class:`EcomEnv` reset with ``seed=s + i`` (each session has its own random stream), and the
    env as a whole equals ``gymnasium.vector.SyncVectorEnv`` of such single envs in its
    ``autoreset_mode`` (``NEXT_STEP``, ``SAME_STEP`` or ``DISABLED``: ``ecomsim.autoreset``).
    ``reset(seed=[s_0, ..., s_{n-1}])`` seeds sub-env ``i`` with ``s_i``; at a full reset a ``None``
    entry gets a stream key drawn from the vector env's ``np_random`` instead (reproducible only
    when that was seeded before, by an earlier ``reset(seed=int)``), as Gymnasium's signature allows.
    ``num_workers=W > 1`` (``gym.make_vec(id, num_envs=N, num_workers=W)``: Gymnasium hands a
    vector entry point only plain keywords, not ``vector_kwargs``) splits the sessions across ``W``
    worker processes, bit for bit the same env (``ecomsim.shards``); close it when done.

    Args:
        num_envs: sessions stepped together.
        render_mode: ``None``, ``"ansi"``, ``"rgb_array"`` or ``"human"`` (see Rendering above).
        autoreset_mode: a ``gymnasium.vector.AutoresetMode`` or its name.
        max_episode_steps: Gymnasium's ``TimeLimit`` on top of ``max_steps`` (see Episode End above).
        num_workers: worker processes the sessions run in (1: this process).
        catalog_obj, shopper_obj, catalog_source, **kwargs: as :class:`EcomEnv`.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": rendering.RENDER_MODES,
                "render_fps": rendering.RENDER_FPS}
    _human: rendering.HumanView | None = None  # (close() may run on an env whose __init__ raised)

    def __init__(self, num_envs: int = 1, render_mode: str | None = None,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP, max_episode_steps: int | None = None,
                 catalog_obj: Catalog | None = None, shopper_obj: ShopperModel | None = None,
                 catalog_source: CatalogSource | None = None, num_workers: int = 1, **kwargs: Any) -> None:
        self.config = EnvConfig.from_kwargs(kwargs, caller=f"{type(self).__name__}.__init__()")
        self.render_mode = rendering.check_render_mode(render_mode)
        self.autoreset_mode = parse_autoreset_mode(autoreset_mode)
        self.metadata = dict(type(self).metadata, autoreset_mode=self.autoreset_mode)
        self._limit = check_episode_limit(max_episode_steps)
        self._human = rendering.HumanView(self.metadata["render_fps"]) if render_mode == "human" else None
        self.num_envs = num_envs = check_range("num_envs", num_envs, 1, None, integer=True)
        self._gan, self.core = gan_core(self.config, num_envs, catalog_obj, shopper_obj, catalog_source, VECTOR_VIEW,
                                         num_workers)
        self.single_action_space, self.single_observation_space = env_spaces(self.core)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._started = False
        self._all = np.arange(num_envs)
        self._last_info: dict[str, np.ndarray] = {}
        self._explainer = step_explainer(self.core, self.config)

    def _sub_keys(self, seeds: list[int | None] | None) -> np.ndarray | None:
        """Stream keys of the sub-envs; ``None`` entries drawn from ``np_random`` (see the class docstring)."""
        if seeds is None:
            return None
        keys = np.empty(self.num_envs, dtype=np.uint64)
        given = [i for i, s in enumerate(seeds) if s is not None]
        free = [i for i, s in enumerate(seeds) if s is None]
        if given:
            keys[given] = keys_from_seeds([seeds[i] for i in given])
        if free:
            keys[free] = key_from_generator(self.np_random, len(free))
        return keys

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        """Start every session, or (``options={"reset_mask": mask}``) the sessions ``mask`` names: they restart
        as single envs reset with their seed (``seed + i`` or the list's entry) or, without one, continuing
        their streams; the others go on untouched (their info rows: no outcome, their running totals), and the
        shared catalog stays."""
        seeds = sub_env_seeds(seed, self.num_envs)
        mask = reset_mask(options, self.num_envs)
        if mask is not None and self._started:
            seeds = [None] * self.num_envs if seeds is None else seeds
            for seeded in (True, False):  # seeded rows get their seed's key, the others continue their streams
                rows = np.array([r for r in np.flatnonzero(mask) if (seeds[r] is not None) == seeded], dtype=np.int64)
                self.core.reset(rows, keys_from_seeds([seeds[r] for r in rows]) if seeded else None)
            self._autoreset[mask] = False
            return self._finish_reset()
        super().reset(seed=seeds[0] if isinstance(seed, (int, np.integer)) else None)
        keys = self._sub_keys(seeds)
        if keys is None and not self._started:
            keys = key_from_generator(self.np_random, self.num_envs)
        if self._gan is not None and self._gan.due(seeded=seed is not None or not self._started):
            self.core.set_catalog(self._gan.draw(draw_catalog_seed(self._catalog_rng(seeds), self.config.catalog_seed_range)))
        self._started = True
        self.core.reset(self._all, keys)
        self._autoreset[:] = False
        return self._finish_reset()

    def _finish_reset(self):
        self._last_info = step_info(self.core, None)
        if self._human is not None:
            self.render()
        return self.core.observe(), self._last_info

    @property
    def catalog_seed(self) -> int | None:
        """Seed of the shared ``catalog="gan"`` catalog (``None`` for other catalogs)."""
        return None if self._gan is None else self._gan.seed

    def action_masks(self) -> np.ndarray:
        """``(num_envs, num_candidates)`` (slates: ``(num_envs, slate_size * num_candidates)``) bool: candidates in
        stock (all true without inventory)."""
        return self.core.action_masks()

    def _catalog_rng(self, seeds: list[int | None] | None) -> np.random.Generator:
        """The generator a single env seeded like sub-env 0 draws its catalog seed from."""
        first = None if seeds is None else seeds[0]
        if first is None:
            return self.np_random
        gen, _ = gym.utils.seeding.np_random(first)
        key_from_generator(gen, 1)  # the session key a single env draws first
        return gen

    def step(self, actions):
        if not self._started:
            raise RuntimeError("call reset() before step()")
        slots = self.core.check_actions(actions)
        mode = self.autoreset_mode
        if mode == AutoresetMode.DISABLED and self._autoreset.any():
            raise RuntimeError(f"sub-envs {np.flatnonzero(self._autoreset).tolist()} have ended and autoreset_mode is "
                               "DISABLED: restart them with reset(options={'reset_mask': mask}) before stepping")
        # NEXT_STEP autoreset: sessions that ended last step start anew (new keys derived from
        # the ended streams, exactly as a single env's reset()) and the step skips them: their
        # action is ignored, they show nothing and earn nothing, and are only observed.
        reset_rows = np.flatnonzero(self._autoreset) if mode == AutoresetMode.NEXT_STEP else self._all[:0]
        self.core.reset(reset_rows)
        skip = self._autoreset if len(reset_rows) else None
        why = None if self._explainer is None else self._explainer(slots, skip)  # from the state before the step
        out = self.core.step(slots, skip=skip)
        truncated = out.truncated
        if self._limit is not None:  # Gymnasium's TimeLimit rule: at the limit, whatever else happened
            truncated = truncated | (self.core.step_count >= self._limit)
        ended = out.terminated | truncated
        obs, info = out.obs, step_info(self.core, out)
        if why is not None:
            info["why"] = np.empty(self.num_envs, dtype=object)  # one record per sub-env, None where skipped
            info["why"][:] = why
        if mode == AutoresetMode.SAME_STEP and ended.any():
            # restart at once (as SyncVectorEnv's reset() of the single env): the ended sessions' last
            # observation and info move to final_obs / final_info, their rows become the new sessions'
            rows = np.flatnonzero(ended)
            final = final_entries(obs, info, ended)
            self.core.reset(rows)
            obs[rows] = self.core.observe(rows)
            fresh = step_info(self.core, None)
            for key, value in info.items():
                if key in fresh:  # (``why`` stays: the explained step is the ended session's)
                    value[rows] = fresh[key][rows]
            info.update(final)
            ended = np.zeros_like(ended)
        self._autoreset = ended
        self._last_info = info
        if self._human is not None:
            self.render()
        return obs, out.reward, out.terminated, truncated, info

    def render(self) -> tuple | None:
        """A tuple of one ``ansi`` text or ``rgb_array`` picture per sub-env (``human``: sub-env 0 shown, None)."""
        if not self._last_info:
            raise RuntimeError("call reset() before render()")
        why, reasons = self._last_info.get("why"), None
        if why is not None:
            from ecomsim.explain.why import slot_reasons  # explain=True: imported already

            reasons = [slot_reasons(w, self.core.slate_size) for w in why]
        frames = rendering.render_rows(self.render_mode, self.core, self._last_info, self._all, self._human, reasons)
        return None if self.render_mode in (None, "human") else tuple(frames)

    def close_extras(self, **kwargs: Any) -> None:
        if self._human is not None:
            self._human.close()
        close = getattr(getattr(self, "core", None), "close", None)  # a sharded core owns processes and shared memory
        if close is not None:
            close()

    def __enter__(self) -> "EcomVectorEnv":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
