"""Training on ``ecomsim/Inventory-v0`` and with masks: what ``agents.train`` adds for the store and for MaskablePPO.

* :func:`algo_class`: ``PPO``, ``DQN`` or sb3-contrib's ``MaskablePPO`` (imported only when asked for).
* :func:`make_store_vec_env`: ``num_envs`` stores for SB3, a ``DummyVecEnv`` of
  ``Monitor``-wrapped :class:`~ecomsim.store.inventory.InventoryEnv` (each store is its own
  core of sessions, so stepping them one after another costs what a native vector env would).
* :class:`StoreMetricsCallback`: at each store episode's end, ``profit_per_day``,
  ``stockout_rate`` and ``inventory_turnover`` (the env's final info) to TensorBoard as
  ``ecom/<metric>`` (``ecomsim.metrics.STORE_TAGS``), averaged over the episodes since the
  last log.
* :class:`RetentionMetricsCallback`: the same for ``Retention-v0``'s customers: ``ecom/profit_per_customer``
  and ``ecom/retention_day_<d>`` (``ecomsim.metrics.RETENTION_TAGS``).
* :func:`policy_setup`: the policy class and ``policy_kwargs`` for an algorithm and env.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.policies import (CandidateActorCriticPolicy, CandidateDQNPolicy, StateDQNPolicy, StoreActorCriticPolicy,
                             obs_layout)
from ecomsim.metrics import RETENTION_METRIC_NAMES, RETENTION_TAGS, STORE_METRIC_NAMES, STORE_TAGS
from ecomsim.registration import LIFECYCLE_ENV_IDS, STORE_ENV_IDS

ALGO_NAMES = ("ppo", "dqn", "maskable_ppo")


def algo_class(algo: str) -> type:
    """The SB3 (or sb3-contrib) algorithm class of ``algo``."""
    if algo == "maskable_ppo":
        from agents.maskable import MaskablePPO

        return MaskablePPO
    return {"ppo": PPO, "dqn": DQN}[algo]


def is_store_env(env_id: str) -> bool:
    return env_id in STORE_ENV_IDS


def is_retention_env(env_id: str) -> bool:
    """``ecomsim/Retention-v0``: like a store, PPO with an MLP over a state vector, scored on its own episodes."""
    return env_id in LIFECYCLE_ENV_IDS


def make_store_vec_env(num_envs: int, options: dict[str, Any], env_id: str = "ecomsim/Inventory-v0"):
    """``num_envs`` ``Inventory-v0`` stores (``InventoryConfig`` keyword arguments; a ``DummyVecEnv``) or
    ``Retention-v0`` customers (``RetentionConfig``'s; the native :class:`~agents.retention_vec_env.RetentionSB3VecEnv`,
    one batched session per step for all who come back) with ``options``, for SB3."""
    if is_retention_env(env_id):
        from agents.retention_vec_env import RetentionSB3VecEnv

        return RetentionSB3VecEnv(num_envs, **options)
    from ecomsim.store.inventory import InventoryEnv

    return DummyVecEnv([lambda: Monitor(InventoryEnv(**options)) for _ in range(num_envs)])


def policy_setup(algo: str, env_id: str, env: Any, hidden: int) -> tuple[type, dict[str, int]]:
    """``(policy class, policy_kwargs)``: the store's MLP, or the candidate scorer (masked for ``maskable_ppo``)."""
    if is_retention_env(env_id) and algo == "dqn":
        return StateDQNPolicy, {"hidden": hidden}
    if is_store_env(env_id) or is_retention_env(env_id):
        return StoreActorCriticPolicy, {"hidden": hidden}
    if algo == "maskable_ppo":
        from agents.maskable import CandidateMaskablePolicy

        cls: type = CandidateMaskablePolicy
    else:
        cls = CandidateActorCriticPolicy if algo == "ppo" else CandidateDQNPolicy
    return cls, dict(obs_layout(env.core), hidden=hidden)


class StoreMetricsCallback(BaseCallback):
    """Logs the store metrics of the episodes finished since the last rollout (``ecom/<metric>``)."""

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self._rows: dict[str, list[float]] = {k: [] for k in STORE_METRIC_NAMES}
        self.history: list[dict[str, float]] = []

    def _on_step(self) -> bool:
        for info, done in zip(self.locals["infos"], self.locals["dones"]):
            if done and "profit_per_day" in info:
                for key in STORE_METRIC_NAMES:
                    self._rows[key].append(float(info[key]))
        return True

    def _on_rollout_end(self) -> None:
        if not self._rows["profit_per_day"]:
            return
        point = {"timesteps": float(self.num_timesteps)}
        for key, values in self._rows.items():
            value = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
            self.logger.record(STORE_TAGS[key], value)
            point[key] = value
        self.history.append(point)
        self._rows = {k: [] for k in STORE_METRIC_NAMES}


class RetentionMetricsCallback(BaseCallback):
    """Logs ``ecom/profit_per_customer`` and ``ecom/retention_day_<d>`` over the customers whose episodes ended since
    the last rollout (``Retention-v0``; retained at day ``d``: not churned, or churned after ``d``)."""

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self._rows: dict[str, list[float]] = {k: [] for k in RETENTION_METRIC_NAMES}
        self.history: list[dict[str, float]] = []

    def _on_step(self) -> bool:
        for info, done in zip(self.locals["infos"], self.locals["dones"]):
            if done and "episode" in info and "churned" in info:
                self._rows["profit_per_customer"].append(float(info["episode"]["r"]))
                for key in RETENTION_METRIC_NAMES[1:]:
                    day = int(key.rsplit("_", 1)[1])
                    self._rows[key].append(float(not info["churned"] or info["day"] > day))
        return True

    def _on_rollout_end(self) -> None:
        if not self._rows["profit_per_customer"]:
            return
        point = {"timesteps": float(self.num_timesteps), "customers": float(len(self._rows["profit_per_customer"]))}
        for key, values in self._rows.items():
            point[key] = float(np.mean(values))
            self.logger.record(RETENTION_TAGS[key], point[key])
        self.history.append(point)
        self._rows = {k: [] for k in RETENTION_METRIC_NAMES}
