"""A native Stable-Baselines3 ``VecEnv`` over the batched simulation core.

SB3 cannot take a Gymnasium ``VectorEnv``, and ``DummyVecEnv`` of ``num_envs``
single envs steps them one by one in Python. :class:`EcomSB3VecEnv` steps all
sessions with one core call and speaks SB3's dialect:

* **same-step reset**: when a session ends, ``step_wait`` returns the *new*
  session's first observation and puts the last one in
  ``infos[i]["terminal_observation"]`` (plus ``"TimeLimit.truncated"``), exactly
  as ``DummyVecEnv`` does;
* ``infos`` is a list of ``num_envs`` dicts holding the env's step info (see
  ``ecomsim.envs``: raw outcome and ``session_*`` totals) and, at a session's end,
  Monitor-style ``"episode": {"r", "l", "t"}`` so SB3's ``rollout/ep_rew_mean``
  works without a ``Monitor`` wrapper (``env_is_wrapped(Monitor)`` answers True);
* :meth:`seed` seeds sub-env ``i`` with ``seed + i`` at the next :meth:`reset` (numpy integers
  accepted; a ``None`` entry of the seeds draws the sub-env's key at random);
* actions are checked as the native vector env checks them (``SimulationCore.check_actions``):
  integers of shape ``(num_envs,)`` (slates ``(num_envs, slate_size)``), never rounded or reshaped;
* ``render_mode`` (``"rgb_array"``, ``"ansi"``, ``"human"``; see ``ecomsim.render``): :meth:`get_images`
  gives one picture per sub-env (``"rgb_array"``), so SB3's ``render()`` tiles them and
  ``VecVideoRecorder`` records them; ``env_method("render")`` gives each sub-env's text or picture.

Sub-env ``i`` seeded with ``s + i`` follows exactly the trajectory of a single
``EcomEnv`` reset with ``seed=s + i`` and then reset without a seed at every
session end (``DummyVecEnv`` of single envs): every session has its own random
stream (``ecomsim.sim.streams``) and a finished row is reset right after the step that
ended it, so its next stream key is derived from the same counter as in the
single env. ``tests/agents/test_vec_env.py`` proves it step by step.

``num_workers=W > 1`` steps the sessions in ``W`` worker processes (``ecomsim.shards``),
bit for bit the same VecEnv; ``close()`` it (or use it in a ``with`` block) when done.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from ecomsim import render as rendering
from ecomsim.catalog import Catalog
from ecomsim.config import EnvConfig
from ecomsim.assembly import build_core, env_spaces
from ecomsim.info import step_info
from ecomsim.errors import check_range
from ecomsim.inputs import check_seed
from ecomsim.sim.memory import ViewBytes
from ecomsim.registration import env_kwargs
from ecomsim.shards import ShardedCore
from ecomsim.sim.streams import keys_from_seeds
from ecomsim.shoppers.base import ShopperModel

# per-session arrays of the core (its ``session`` block) that get_attr / set_attr address per sub-env
_SESSION_ARRAYS = ("step_count", "clicks", "carts", "purchases", "impressions", "revenue", "candidates")
#: what this VecEnv holds per session besides the core (the memory check, ``ecomsim.sim.memory``): three lists of
#: per-session info dicts (the reset's, the last step's held by the caller and the next), 1.2 KB each (measured
#: with ``tracemalloc`` over 20,000 sessions), and a terminal observation per session that ends
SB3_VIEW = ViewBytes(fixed=3 * 1280, observations=1)


class EcomSB3VecEnv(VecEnv):
    """``num_envs`` ecomsim sessions as one SB3 ``VecEnv`` (see the module docstring).

    Args:
        num_envs: sessions stepped together.
        env_id: a registered id whose options are the base (``ecomsim/Recommend-v0``).
        render_mode: ``None``, ``"rgb_array"``, ``"ansi"`` or ``"human"`` (see the module docstring).
        catalog_obj: an in-memory catalog (overrides ``catalog``).
        shopper_obj: an in-memory shopper model (overrides ``user_model``).
        num_workers: worker processes stepping the sessions (1: this process).
        **kwargs: ``EnvConfig`` overrides (``user_model``, ``catalog``, ``channel``, ...).
    """

    def __init__(self, num_envs: int = 1, env_id: str = "ecomsim/Recommend-v0", render_mode: str | None = None,
                 catalog_obj: Catalog | None = None, shopper_obj: ShopperModel | None = None, num_workers: int = 1,
                 **kwargs: Any) -> None:
        self.env_id = env_id
        self.config = EnvConfig.from_kwargs(env_kwargs(env_id, **kwargs), caller=f"{type(self).__name__}.__init__()")
        self.render_mode = rendering.check_render_mode(render_mode)
        num_envs = check_range("num_envs", num_envs, 1, None, integer=True)
        if num_workers == 1 and not isinstance(num_workers, bool):  # ShardedCore names a bad value
            self.core = build_core(self.config, num_envs, catalog_obj, shopper_obj, view=SB3_VIEW)
        else:
            self.core = ShardedCore(self.config, num_envs, catalog_obj, shopper_obj, num_workers=num_workers)
        self._human = rendering.HumanView() if render_mode == "human" else None
        self._last_info: dict[str, np.ndarray] = {}
        action_space, observation_space = env_spaces(self.core)
        self.single_action_space = action_space
        super().__init__(num_envs, observation_space, action_space)
        self._all = np.arange(num_envs)
        self._started = False
        self._actions: np.ndarray | None = None
        self._ep_return = np.zeros(num_envs)
        self._t0 = time.time()
        self._seed_gen = np.random.default_rng()

    # ------------------------------------------------------------------ reset
    def _keys_for_reset(self) -> np.ndarray | None:
        seeds = [check_seed(s, f"seed of sub-env {i}") for i, s in enumerate(self._seeds)]
        if all(s is None for s in seeds) and self._started:
            return None  # like a single env reset() without a seed: keys derived from the old streams
        # unseeded sub-envs (all of them at the first reset) get a random seed
        drawn = iter(int(s) for s in self._seed_gen.integers(0, 2**31 - 1, size=self.num_envs))
        return keys_from_seeds([next(drawn) if s is None else s for s in seeds])

    def reset(self) -> np.ndarray:
        keys = self._keys_for_reset()
        self._started = True
        self.core.reset(self._all, keys)
        self._ep_return[:] = 0.0
        info = self._last_info = step_info(self.core, None)
        self.reset_infos = _split_info(info, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        return self.core.observe()

    # ------------------------------------------------------------------- step
    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        if self._actions is None:
            raise RuntimeError("call step_async(actions) before step_wait()")
        slots = self.core.check_actions(self._actions)
        self._actions = None
        out = self.core.step(slots)
        reward = out.reward.astype(np.float32)
        dones = out.terminated | out.truncated
        self._last_info = step_info(self.core, out)
        infos = _split_info(self._last_info, self.num_envs)
        obs = out.obs
        self._ep_return += out.reward
        done_rows = np.flatnonzero(dones)
        if len(done_rows):
            now = round(time.time() - self._t0, 6)
            lengths = self.core.session.step_count
            for i in done_rows.tolist():
                infos[i]["terminal_observation"] = obs[i].copy()
                infos[i]["TimeLimit.truncated"] = bool(out.truncated[i])
                infos[i]["episode"] = {"r": float(self._ep_return[i]), "l": int(lengths[i]), "t": now}
            # reset right after the ending step: the next key is derived from the same counter
            # as a single env's reset() without a seed, so sub-env i stays equal to DummyVecEnv
            self.core.reset(done_rows, None)
            self._ep_return[done_rows] = 0.0
            obs[done_rows] = self.core.observe(done_rows)
            if self.render_mode is not None:  # render shows the new sessions (the infos keep the step's)
                fresh = step_info(self.core, None)
                self._last_info = {key: np.where(_rows_mask(dones, value), fresh[key], value)
                                   for key, value in self._last_info.items()}
            if self.core.stock is not None:  # the mask of the new session's candidates
                masks = self.core.action_masks(done_rows)
                for j, i in enumerate(done_rows.tolist()):
                    infos[i]["action_mask"] = masks[j]
        return obs, reward, dones, infos

    def step(self, actions: np.ndarray) -> VecEnvStepReturn:
        self.step_async(actions)
        return self.step_wait()

    def close(self) -> None:
        if getattr(self, "_human", None) is not None:
            self._human.close()
        if isinstance(self.core, ShardedCore):
            self.core.close()

    def __enter__(self) -> "EcomSB3VecEnv":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------- sb3 extras
    def _frames(self, indices: list[int], mode: str | None) -> list[Any]:
        if not self._last_info:
            raise RuntimeError("call reset() before rendering")
        return rendering.render_rows(mode, self.core, self._last_info, indices, self._human)

    def get_images(self) -> Sequence[np.ndarray | None]:
        """One ``(H, 640, 3)`` uint8 picture per sub-env (``render_mode="rgb_array"``; else ``None`` each, with
        SB3's warning), of the session the next step continues."""
        if self.render_mode != "rgb_array":
            warnings.warn(f"The render mode is {self.render_mode}, but this method assumes it is `rgb_array` "
                          "to obtain images.")
            return [None] * self.num_envs
        return self._frames(list(range(self.num_envs)), "rgb_array")

    def _check_indices(self, indices: VecEnvIndices) -> list[int]:
        idx = list(self._get_indices(indices))
        bad = [i for i in idx if not 0 <= int(i) < self.num_envs]
        if bad:
            raise IndexError(f"sub-env indices must be in [0, {self.num_envs - 1}], got {bad}")
        return [int(i) for i in idx]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Per-session core arrays (``step_count``, ``clicks``, ...) per sub-env; else the shared attribute or config field."""
        idx = self._check_indices(indices)
        if attr_name in _SESSION_ARRAYS:
            arr = getattr(self.core.session, attr_name)
            return [arr[i].copy() if isinstance(arr[i], np.ndarray) else arr[i].item() for i in idx]
        if attr_name == "render_mode":
            return [self.render_mode] * len(idx)
        if attr_name in ("unwrapped", "env"):
            return [self] * len(idx)
        if hasattr(self.config, attr_name):
            return [getattr(self.config, attr_name)] * len(idx)
        if attr_name in ("core", "config", "env_id", "observation_space", "action_space", "spec", "metadata"):
            return [getattr(self, attr_name, None)] * len(idx)
        if attr_name == "action_masks" and self.core.stock is not None:  # sb3-contrib asks has_attr first
            return [self.action_masks] * len(idx)
        raise AttributeError(
            f"sub-envs have no attribute {attr_name!r}; valid: per-session {list(_SESSION_ARRAYS)}, "
            f"config fields {list(self.config.to_dict())}, or core, config, env_id, observation_space, action_space"
        )

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set a per-session core array for some sub-envs; shared attributes only for all of them at once."""
        idx = self._check_indices(indices)
        if attr_name in _SESSION_ARRAYS:
            if isinstance(self.core, ShardedCore):
                self.core.set_session(attr_name, np.asarray(idx), value)
            else:
                getattr(self.core.session, attr_name)[idx] = value
            return
        if hasattr(self.config, attr_name):
            raise AttributeError(
                f"config field {attr_name!r} is frozen (the core is built from it); "
                f"make a new env with {attr_name}={value!r} instead"
            )
        if sorted(idx) != list(range(self.num_envs)):
            raise ValueError(f"{attr_name!r} is shared by all sub-envs (one core); set it with indices=None, got {idx}")
        setattr(self, attr_name, value)

    def action_masks(self) -> np.ndarray:
        """``(num_envs, mask_dim)`` bool, the candidates in stock (inventory only; ``ecomsim.sim.stock.candidate_mask``)."""
        return self.core.action_masks()

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        """Supported: ``get_wrapper_attr(name)``, ``render()`` (per sub-env what a single env in ``render_mode``
        returns: text, a picture, or ``None`` after ``human`` showed the first) and, with inventory,
        ``action_masks()`` (one mask per sub-env: sb3-contrib's ``MaskablePPO`` protocol)."""
        idx = self._check_indices(indices)
        if method_name == "get_wrapper_attr":
            return self.get_attr(method_args[0], idx)
        if method_name == "action_masks" and self.core.stock is not None:
            return list(self.core.action_masks(np.asarray(idx)))
        if method_name == "render":
            return self._frames(idx, self.render_mode)
        supported = ["get_wrapper_attr", "render"] + (["action_masks"] if self.core.stock is not None else [])
        raise AttributeError(f"sub-envs have no method {method_name!r}; supported: {supported}")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """True only for SB3's ``Monitor``: this VecEnv reports Monitor's ``episode`` stats itself."""
        idx = self._check_indices(indices)
        return [wrapper_class is Monitor] * len(idx)


def _split_info(info: dict[str, np.ndarray], n: int) -> list[dict[str, Any]]:
    """Batched info -> ``n`` per-session dicts (numpy scalars and row arrays, as a single env gives)."""
    keys = list(info)
    columns = [list(info[k]) for k in keys]
    return [dict(zip(keys, row)) for row in zip(*columns)]


def _rows_mask(rows: np.ndarray, value: np.ndarray) -> np.ndarray:
    """``(N,)`` bool ``rows`` shaped to broadcast over ``value`` ``(N, ...)``."""
    return rows.reshape((-1,) + (1,) * (value.ndim - 1))
