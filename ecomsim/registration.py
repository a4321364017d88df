"""Registration of the ecomsim environment ids with Gymnasium.

Called on ``import ecomsim`` and exposed as the ``gymnasium.envs`` entry point.
"""

from __future__ import annotations

import gymnasium as gym

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
