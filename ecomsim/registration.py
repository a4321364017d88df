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


def env_kwargs(env_id: str, **overrides: Any) -> dict[str, Any]:
    """``EnvConfig`` keyword arguments of a registered id, with ``overrides`` (``None`` values dropped)."""
    if env_id not in ENV_IDS:
        raise ValueError(f"env_id must be one of {list(ENV_IDS)}, got {env_id!r}.{suggest(env_id, list(ENV_IDS))}")
    kwargs = dict(ENV_IDS[env_id])
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    return kwargs
