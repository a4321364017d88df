"""Property-based tests (Hypothesis): any option, action or seed either works or fails with a clear error.

"Clear" is the project's rule for users' mistakes: a ``ValueError`` or ``TypeError``
(a wrong type) whose message names the field it is about; never an internal exception
(``IndexError``, ``KeyError``, ``AttributeError``, numpy's ``AxisError``, ...) and never
a hang (each example has a deadline). numpy integers are drawn wherever Python ints are
(options, actions, seeds), whole-number floats among the actions (refused, never rounded),
``None`` and floats among the vector env's seeds. Sizes that cannot fit in memory are
refused before anything is allocated (``tests/sim/test_memory.py``); here catalogs stay
small, since a large one that fits takes long to draw.

Hypothesis' settings keep the file to a few seconds: ``max_examples`` modest, the
envs built once per id where the example does not change them.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ecomsim
from ecomsim.config import EnvConfig

FIELDS = [f.name for f in dataclasses.fields(EnvConfig)]
IDS = list(ecomsim.ENV_IDS)
SETTINGS = dict(deadline=timedelta(seconds=20), suppress_health_check=[HealthCheck.too_slow], derandomize=True)
CLEAR = (ValueError, TypeError, FileNotFoundError, IsADirectoryError)  # users' mistakes (ecomsim.errors)

junk = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
                 st.text(max_size=12), st.lists(st.integers(-5, 5), max_size=3),
                 st.dictionaries(st.text(max_size=5), st.floats(-2, 2), max_size=2))


def ints(low: int, high: int) -> st.SearchStrategy:
    """Python or numpy integers in ``[low, high]`` (numpy's are accepted wherever Python's are)."""
    return st.integers(low, high).flatmap(lambda v: st.sampled_from([v, np.int64(v), np.int32(v)]))


# a valid-looking value per option (what a user would try), mixed with junk
plausible = {
    "mode": st.sampled_from(["recommend", "slate", "Slate", ""]),
    "num_candidates": ints(-3, 60),
    "slate_size": ints(-1, 8),
    "max_steps": ints(-2, 300),
    "reward": st.sampled_from(["purchase", "revenue", "click", "clicks"]),
    "user_model": st.sampled_from(["reference", "dnn", "DNN"]),
    "catalog": st.sampled_from(["default", "reference", "gan", "/nonexistent/c.npz", "/tmp", "", "defualt"]),
    "num_items": st.one_of(st.none(), ints(-5, 3000)),  # large catalogs: see the module docstring
    "catalog_refresh": ints(-2, 5),
    "category_mix": st.one_of(st.none(), st.dictionaries(st.sampled_from(["books", "shoes", "boks"]),
                                                         st.one_of(st.floats(-1, 5), st.just(float("nan"))), max_size=2)),
    "price_band": st.one_of(st.none(), st.lists(st.one_of(st.floats(-10, 500), st.just(float("nan"))), min_size=0, max_size=3)),
    "catalog_seed_range": st.one_of(st.none(), st.lists(st.integers(-3, 50), min_size=0, max_size=3)),
    "catalog_generator": st.sampled_from(["default", "/nonexistent.json", ""]),
    "channel": st.sampled_from([None, "app", "web", "social", "tv"]),
    "popular_share": st.one_of(st.floats(-0.5, 1.5), st.just(float("nan"))),
    "personal_share": st.one_of(st.floats(-0.5, 1.5), st.just(float("nan"))),
    "retrieval_noise": st.one_of(st.floats(-1, 200), st.sampled_from([float("nan"), float("inf")])),
    "device": st.sampled_from(["cpu", "cuda"]),
    "explain": st.sampled_from([False, True, "yes"]),
    "explain_reasons": st.integers(-1, 5),
    "shopper_sampling": st.sampled_from(["fixed", "per_session", "per-session"]),
    "uncertainty_penalty": st.one_of(st.none(), st.floats(-1, 3), st.just(float("nan"))),
    "ensemble_member": st.one_of(st.none(), st.integers(-1, 7)),
    "ensemble": st.sampled_from(["default", "/nonexistent/ens.pt"]),
}


@st.composite
def options(draw) -> dict:
    keys = draw(st.lists(st.sampled_from(FIELDS + ["num_candidate", "seed", "render"]), max_size=4, unique=True))
    out = {}
    for key in keys:
        value = draw(st.one_of(plausible[key], junk)) if key in plausible else draw(junk)
        if key == "num_items" and isinstance(value, int) and value > 3000:
            value = 3000  # large catalogs: see the module docstring
        out[key] = value
    return out


def named(exc: BaseException, keys) -> bool:
    """The message (before Gymnasium's "was raised from the environment creator" suffix) names one of ``keys``."""
    text = str(exc).split(" was raised from the environment creator")[0]
    return any(k in text for k in keys)


@pytest.fixture(scope="module", autouse=True)
def warm():
    """Compile the kernels and load the weights once, outside every example's deadline."""
    for env_id in IDS:
        for model in ("dnn", "reference"):
            env = gym.make(env_id, user_model=model)
            env.reset(seed=0)
            env.step(env.action_space.sample())


@pytest.mark.timeout(300)
@settings(max_examples=60, **SETTINGS)
@given(env_id=st.sampled_from(IDS), kwargs=options(), seed=st.integers(0, 2**32))
def test_any_options_work_or_fail_clearly(env_id, kwargs, seed):
    try:
        env = gym.make(env_id, **kwargs)
    except CLEAR as exc:
        keys = {**ecomsim.ENV_IDS[env_id], **kwargs}  # the id's own options (Slate-v0's slate_size) count too
        assert named(exc, keys), f"{type(exc).__name__} does not name a field of {keys}: {exc}"
        return
    obs, info = env.reset(seed=seed)
    assert env.observation_space.contains(obs), kwargs
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs) and np.isfinite(reward)


action_values = st.one_of(
    ints(-30, 30), st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 25).map(float),
    st.integers(-3, 25).map(np.float32), st.booleans(), st.none(), st.text(max_size=3), st.lists(st.integers(-3, 25), max_size=7),
    st.builds(lambda v, dt: np.asarray(v).astype(dt), st.lists(st.integers(-3, 25), max_size=7),
              st.sampled_from([np.int64, np.int32, np.uint8, np.float32, np.float64, object])),
    st.builds(lambda v: np.full((2, 3), v), st.integers(0, 5)),
)


@pytest.fixture(scope="module")
def single_envs():
    envs = {env_id: gym.make(env_id, user_model="reference", max_steps=5) for env_id in IDS}
    for env in envs.values():
        env.reset(seed=0)
    return envs


@pytest.mark.timeout(300)
@settings(max_examples=150, **SETTINGS)
@given(env_id=st.sampled_from(IDS), action=action_values)
def test_any_action_works_or_fails_clearly(single_envs, env_id, action):
    env = single_envs[env_id]
    try:
        obs, reward, terminated, truncated, info = env.step(action)
    except CLEAR as exc:
        assert "action" in str(exc), f"{type(exc).__name__} does not name the action: {exc}"
        return
    assert env.observation_space.contains(obs) and np.isfinite(reward)
    if terminated or truncated:
        env.reset()


@pytest.mark.timeout(300)
@settings(max_examples=40, **SETTINGS)
@given(env_id=st.sampled_from(IDS), num_envs=st.integers(1, 6), data=st.data())
def test_vector_actions_and_seeds_work_or_fail_clearly(env_id, num_envs, data):
    env = gym.make_vec(env_id, num_envs=num_envs, user_model="reference", max_steps=4)
    seed = data.draw(st.one_of(st.none(), ints(-2, 2**31 - 1), st.floats(-2, 2), st.text(max_size=2),
                               st.lists(st.one_of(st.none(), ints(-1, 2**31 - 1), st.floats(0, 2)), min_size=0, max_size=8)),
                     label="seed")
    try:
        env.reset(seed=seed)
    except CLEAR as exc:
        assert "seed" in str(exc), exc
        env.reset(seed=0)
    k = env.unwrapped.config.slate_size if "Slate" in env_id else None
    shape = (num_envs,) if k is None else (num_envs, k)
    actions = data.draw(st.one_of(
        st.builds(lambda v: np.asarray(v, dtype=np.int64), st.lists(st.integers(-2, 22), min_size=0, max_size=3 * num_envs)),
        st.builds(lambda v: np.full(shape, v, dtype=np.int64), st.integers(-2, 22)),
        st.builds(lambda v: np.full(shape, v + 0.5), st.integers(0, 5)),
        st.builds(lambda v: np.full((num_envs + 1,) + shape[1:], v, dtype=np.int64), st.integers(0, 5)),
        st.builds(lambda v: np.full(shape, v, dtype=np.float64), st.integers(0, 5)),  # whole-number floats
        st.builds(lambda v: np.full(shape + (1,), v, dtype=np.int64), st.integers(0, 5)),
    ), label="actions")
    for _ in range(3):  # a few steps: autoresets included
        try:
            obs, reward, terminated, truncated, info = env.step(actions)
        except CLEAR as exc:
            assert "action" in str(exc), exc
            return
        assert obs.shape[0] == num_envs and np.isfinite(reward).all()


@pytest.mark.timeout(300)
@settings(max_examples=60, **SETTINGS)
@given(seed=st.one_of(st.none(), ints(-5, 2**31 - 1), st.integers(2**31, 2**70), st.floats(-2, 2), st.text(max_size=3),
                     st.booleans()))
def test_any_seed_works_or_fails_clearly(single_envs, seed):
    env = single_envs["ecomsim/Recommend-v0"]
    try:
        obs, info = env.reset(seed=seed)
    except CLEAR as exc:
        assert "seed" in str(exc), exc
        return
    assert env.observation_space.contains(obs)
