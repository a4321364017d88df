"""The default ids keep their outcomes bit for bit: hashes of 200-step trajectories.

The hashes were recorded on the release before the architecture regrouping (commit
1e24f59) and must never change while the world's defaults stay the same: new world
options (inventory, explanations, ensembles, lifecycle) are off by default. A change
that moves one of these hashes changes every published figure; if that is intended,
say so in the change and record the new hashes with ``python tests/test_trajectory_hash.py``.
"""

from __future__ import annotations

import hashlib

import gymnasium as gym
import numpy as np
import pytest

import ecomsim  # noqa: F401  (registers the ids)

STEPS = 200
NUM_ENVS = 64
# the info entries of the first release, hashed in this order (later releases may add keys)
INFO_KEYS = ("items", "clicked", "carted", "purchased", "clicks", "carts", "purchases", "revenue", "left",
             "session_impressions", "session_clicks", "session_carts", "session_purchases", "session_revenue",
             "session_length")

RECORDED = {
    "single ecomsim/Recommend-v0 dnn": "978b0a4676cfbf978e03960257cf347ada375a7f74dc8d53f9282d79952a2dd4",
    "single ecomsim/Recommend-v0 reference": "6ad57ebaa7dcc9d96a1a1f7912fde431a9882b45a92465b2d9717eb76ed780cc",
    "single ecomsim/Slate-v0 dnn": "cb3e5f64fe7c119d9f179eb347308ea1cb058bfa34be651966259bd022814551",
    "single ecomsim/Slate-v0 reference": "6e25c439f5864225f330c33bc3121d1c7d34a148bdbbd40e6d19a7f2a1c2b00b",
    "vector ecomsim/Recommend-v0 dnn": "40d3db972b8a581fa49381c66d56f84c042a2345425f158be66ab7a79095667e",
    "vector ecomsim/Recommend-v0 reference": "0559800219a1980dc02591a415896320d5d184c81c184dc1d5448c60abfdc9e9",
    "vector ecomsim/Slate-v0 dnn": "066622d80029e654521d5d0e7b2cd0b1a0854406cda084dc9e1db1f4272f2132",
    "vector ecomsim/Slate-v0 reference": "ead7fbb70280a5149f315145e449349c30897c9f337b520f7e87a8829c2a45f0",
}


def _feed(h, *arrays) -> None:
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())


def _actions(rng: np.random.Generator, space: gym.Space, n: int | None) -> np.ndarray:
    shape = () if n is None else (n,)
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(0, space.n, size=shape)
    return rng.integers(0, space.nvec, size=shape + space.nvec.shape)


def single_hash(env_id: str, user_model: str) -> str:
    env = gym.make(env_id, user_model=user_model)
    rng = np.random.default_rng(2024)
    h = hashlib.sha256()
    obs, info = env.reset(seed=11)
    _feed(h, obs, *(np.asarray(info[k]) for k in INFO_KEYS))
    for _ in range(STEPS):
        a = _actions(rng, env.action_space, None)
        obs, r, term, trunc, info = env.step(int(a) if a.ndim == 0 else a)
        _feed(h, obs, np.float64(r), np.bool_(term), np.bool_(trunc), *(np.asarray(info[k]) for k in INFO_KEYS))
        if term or trunc:
            obs, info = env.reset()
            _feed(h, obs)
    return h.hexdigest()


def vector_hash(env_id: str, user_model: str) -> str:
    env = gym.make_vec(env_id, num_envs=NUM_ENVS, user_model=user_model)
    rng = np.random.default_rng(2025)
    h = hashlib.sha256()
    obs, info = env.reset(seed=21)
    _feed(h, obs, *(info[k] for k in INFO_KEYS))
    single = env.single_action_space
    for _ in range(STEPS):
        obs, r, term, trunc, info = env.step(_actions(rng, single, NUM_ENVS))
        _feed(h, obs, r, term, trunc, *(info[k] for k in INFO_KEYS))
    return h.hexdigest()


CASES = [(view, env_id, model) for view in ("single", "vector")
         for env_id in ("ecomsim/Recommend-v0", "ecomsim/Slate-v0") for model in ("dnn", "reference")]


@pytest.mark.parametrize("view, env_id, user_model", CASES)
def test_trajectory_hash_unchanged(view, env_id, user_model):
    got = (single_hash if view == "single" else vector_hash)(env_id, user_model)
    assert got == RECORDED[f"{view} {env_id} {user_model}"], (
        f"{view} {env_id} user_model={user_model}: the 200-step trajectory changed; the default ids must keep "
        "their outcomes bit for bit (see the module docstring)"
    )


if __name__ == "__main__":
    for view, env_id, model in CASES:
        fn = single_hash if view == "single" else vector_hash
        print(f'    "{view} {env_id} {model}": "{fn(env_id, model)}",')
