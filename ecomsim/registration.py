"""Registration of the ecomsim environment ids with Gymnasium.

Called on ``import ecomsim``. Gymnasium >= 1.0 loads no entry-point plugins, so a process
that never imports ecomsim (a remote worker) needs ``gym.make("ecomsim:<id>")``, which
imports it first.

No ``max_episode_steps`` is registered: the env truncates itself at ``max_steps``, and
reports it as ``env.spec.max_episode_steps`` (``ecomsim.envs``, Episode End); a registered
value would make ``gym.make`` stack a ``TimeLimit`` that cannot see a ``max_steps`` option.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from ecomsim.errors import suggest

ENV_IDS = {
    "ecomsim/Recommend-v0": {"mode": "recommend", "slate_size": 1},
    "ecomsim/Slate-v0": {"mode": "slate", "slate_size": 5},
}
#: ids whose options are not ``EnvConfig``'s: the store's replenishment env (``ecomsim.store.inventory``).
#: Inventory-v0's traffic, 200 sessions a day, keeps a 180-day episode (36,000 sessions) affordable with
#: DNN shoppers, and still gives ~8 units of demand a day, about one per ordering group (docs/inventory.md)
STORE_ENV_IDS = {
    "ecomsim/Inventory-v0": {"sessions_per_day": 200},
}
#: ids whose options are ``RetentionConfig``'s: one customer over her lifecycle (``ecomsim.lifecycle.retention``)
LIFECYCLE_ENV_IDS = {
    "ecomsim/Retention-v0": {},
}


def register_envs() -> None:
    """Register every ecomsim id (idempotent)."""
    for env_id, kwargs in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="ecomsim.envs:EcomEnv",
            vector_entry_point="ecomsim.envs:EcomVectorEnv",
            kwargs=dict(kwargs),
            disable_env_checker=False,
        )
    for env_id, kwargs in STORE_ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point="ecomsim.store.inventory:InventoryEnv",
                         vector_entry_point="ecomsim.store.inventory:InventoryVectorEnv", kwargs=dict(kwargs),
                         disable_env_checker=False)
    for env_id, kwargs in LIFECYCLE_ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point="ecomsim.lifecycle.retention:RetentionEnv",
                         vector_entry_point="ecomsim.lifecycle.retention:RetentionVectorEnv", kwargs=dict(kwargs),
                         disable_env_checker=False)


def store_env_kwargs(env_id: str, **overrides: Any) -> dict[str, Any]:
    """``InventoryConfig`` keyword arguments of a registered store id, with ``overrides`` (``None`` values dropped)."""
    if env_id not in STORE_ENV_IDS:
        valid = list(STORE_ENV_IDS)
        raise ValueError(f"env_id must be one of {valid}, got {env_id!r}.{suggest(env_id, valid)}")
    return {**STORE_ENV_IDS[env_id], **{k: v for k, v in overrides.items() if v is not None}}


def lifecycle_env_kwargs(env_id: str, **overrides: Any) -> dict[str, Any]:
    """``RetentionConfig`` keyword arguments of a registered lifecycle id, with ``overrides`` (``None`` values dropped)."""
    if env_id not in LIFECYCLE_ENV_IDS:
        valid = list(LIFECYCLE_ENV_IDS)
        raise ValueError(f"env_id must be one of {valid}, got {env_id!r}.{suggest(env_id, valid)}")
    return {**LIFECYCLE_ENV_IDS[env_id], **{k: v for k, v in overrides.items() if v is not None}}


def env_kwargs(env_id: str, **overrides: Any) -> dict[str, Any]:
    """``EnvConfig`` keyword arguments of a registered id, with ``overrides`` (``None`` values dropped)."""
    if env_id not in ENV_IDS:
        raise ValueError(f"env_id must be one of {list(ENV_IDS)}, got {env_id!r}.{suggest(env_id, list(ENV_IDS))}")
    kwargs = dict(ENV_IDS[env_id])
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    return kwargs
