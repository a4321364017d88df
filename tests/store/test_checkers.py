"""Gymnasium's and SB3's checkers pass, with no warning, on the store's id and on the session ids with inventory."""

from __future__ import annotations

import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import ecomsim  # noqa: F401  (registers the ids)


@pytest.mark.parametrize("env_id, kwargs", [
    ("ecomsim/Inventory-v0", {"user_model": "reference", "sessions_per_day": 20}),
    ("ecomsim/Recommend-v0", {"user_model": "reference", "inventory": {}}),
    ("ecomsim/Slate-v0", {"inventory": {}}),
], ids=["inventory-v0", "recommend-stock", "slate-stock-dnn"])
def test_checkers_pass_without_a_warning(env_id: str, kwargs: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(gym.make(env_id, **kwargs).unwrapped, skip_render_check=True)
        sb3_check_env(gym.make(env_id, **kwargs), warn=True)
