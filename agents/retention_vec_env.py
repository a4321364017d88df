"""A native Stable-Baselines3 ``VecEnv`` of ``ecomsim/Retention-v0`` customers (:class:`RetentionSB3VecEnv`).

``DummyVecEnv`` of ``num_envs`` single envs runs each returning customer's visit as
its own one-row session; this VecEnv steps all customers with one
:class:`~ecomsim.lifecycle.retention_batch.RetentionBatch` call, so every step runs
one batched session for all who come back (the native Gymnasium vector env's
machinery, ``ecomsim.lifecycle.retention``), and speaks SB3's dialect:

* **same-step reset**: a customer whose episode ended is replaced by a new one in the
  same ``step_wait``; her last observation is in ``infos[i]["terminal_observation"]``
  (with ``"TimeLimit.truncated": False``: Retention-v0 is never truncated), and
  Monitor-style ``"episode": {"r", "l", "t"}`` is added so SB3's ``rollout/ep_rew_mean``
  and ``agents.store_train.RetentionMetricsCallback`` work without a ``Monitor``;
* ``infos[i]`` holds the single env's step info (``strategy`` and ``channel`` as names);
* :meth:`seed` seeds sub-env ``i`` with ``seed + i`` at the next :meth:`reset`.

Sub-env ``i`` seeded ``s + i`` lives the customers of a single ``RetentionEnv`` reset
with ``seed=s + i`` and then without a seed at each episode end (``DummyVecEnv`` of
single envs): each row draws its customers' stream keys from its own generator, as
the single env does from its ``np_random`` (``tests/agents/test_retention_vec_env.py``,
reference world).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from ecomsim.config import CHANNELS
from ecomsim.lifecycle.retention import check_actions
from ecomsim.lifecycle.retention_batch import INFO_KEYS, OBS_SIZE, KeyQueues, RetentionBatch
from ecomsim.lifecycle.retention_config import RetentionConfig


class RetentionSB3VecEnv(VecEnv):
    """``num_envs`` Retention-v0 customers stepped together for SB3 (module docstring).

    Args:
        num_envs: customers side by side.
        **options: :class:`~ecomsim.lifecycle.retention_config.RetentionConfig` fields.
    """

    def __init__(self, num_envs: int, **options: Any) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.config = cfg = RetentionConfig.from_kwargs(options)
        self.batch = RetentionBatch(cfg, int(num_envs))
        super().__init__(int(num_envs), spaces.Box(0.0, 1.0, (OBS_SIZE,), dtype=np.float32),
                         spaces.Discrete(cfg.num_actions))
        self._rows = np.arange(self.num_envs)
        self._seeds: list[int | None] = [None] * self.num_envs
        self._gens: KeyQueues | None = None
        self._actions: np.ndarray | None = None
        self._returns = np.zeros(self.num_envs)
        self._lengths = np.zeros(self.num_envs, dtype=np.int64)
        self._started = time.time()

    def seed(self, seed: int | None = None) -> Sequence[None | int]:
        """Sub-env ``i`` gets ``seed + i`` at the next :meth:`reset` (``None``: fresh entropy)."""
        self._seeds = [None if seed is None else int(seed) + i for i in range(self.num_envs)]
        return self._seeds

    def reset(self) -> np.ndarray:
        if self._gens is None or any(s is not None for s in self._seeds):
            self._gens = KeyQueues([seeding.np_random(s)[0] for s in self._seeds], self.batch)
        self._seeds = [None] * self.num_envs
        self.batch.reset_rows(self._rows, self._keys(self._rows))
        self._returns[:] = 0.0
        self._lengths[:] = 0
        return self.batch.observe(self._rows)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = check_actions(actions, self.config.num_actions, self.num_envs)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("call step_async(actions) before step_wait()")
        if self._gens is None:
            raise RuntimeError("call reset() before step()")
        cfg = self.config
        actions, self._actions = self._actions, None
        reward, terminated, info = self.batch.step(self._rows, actions)
        self._returns += reward
        self._lengths += 1
        infos: list[dict[str, Any]] = []
        for i in range(self.num_envs):
            one = {k: info[k][i].item() for k in INFO_KEYS}
            one["strategy"] = cfg.strategies[one["strategy"]]
            one["channel"] = CHANNELS[one["channel"]] if one["channel"] >= 0 else None
            one["message_plan"] = list(cfg.message_plans[cfg.decode(int(actions[i]))[1]])
            infos.append(one)
        done = np.flatnonzero(terminated)
        if len(done):
            last = self.batch.observe(done)
            for j, i in enumerate(done):
                infos[i]["terminal_observation"] = last[j]
                infos[i]["TimeLimit.truncated"] = False
                infos[i]["episode"] = {"r": float(self._returns[i]), "l": int(self._lengths[i]),
                                       "t": round(time.time() - self._started, 6)}
            self.batch.reset_rows(done, self._keys(done))
            self._returns[done] = 0.0
            self._lengths[done] = 0
        return self.batch.observe(self._rows), reward.astype(np.float32), terminated.copy(), infos

    def close(self) -> None:
        pass

    def _keys(self, rows: np.ndarray) -> np.ndarray:
        assert self._gens is not None
        return self._gens.next(rows)

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [int(indices)] if isinstance(indices, (int, np.integer)) else [int(i) for i in indices]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """``config`` (the options) or ``render_mode`` (``None``) per sub-env; other names are an error."""
        values = {"config": self.config, "render_mode": None}
        if attr_name not in values:
            raise AttributeError(f"RetentionSB3VecEnv has no per-sub-env attribute {attr_name!r}; it has "
                                 f"{sorted(values)}")
        return [values[attr_name] for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError(f"RetentionSB3VecEnv attributes are read-only, got {attr_name!r}")

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        raise AttributeError(f"RetentionSB3VecEnv sub-envs have no methods to call, got {method_name!r}")

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        """True for ``Monitor`` (its episode info is provided), False otherwise."""
        return [issubclass(Monitor, wrapper_class) for _ in self._indices(indices)]
