"""The ecosystem's dialect: Python's own TypeError, Gymnasium's autoreset modes, a truthful spec, wrappers, TorchRL."""

from __future__ import annotations

import importlib.util

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import FrameStackObservation, TimeAwareObservation

import ecomsim
from ecomsim.autoreset import AutoresetMode, parse_autoreset_mode
from ecomsim.envs import EcomEnv, EcomVectorEnv

IDS = list(ecomsim.ENV_IDS)
MODELS = ("reference", "dnn")
# Gymnasium 1.0's SyncVectorEnv has NEXT_STEP only (AutoresetMode arrived in 1.1)
SYNC_MODES = hasattr(gym.vector, "AutoresetMode")
STEP_KEYS = ("items", "clicked", "carted", "purchased", "clicks", "carts", "purchases", "revenue", "left",
             "session_impressions", "session_clicks", "session_carts", "session_purchases", "session_revenue",
             "session_length")


# ------------------------------------------------------------ TypeError
@pytest.mark.parametrize("make, owner", [
    (lambda **kw: gym.make("ecomsim/Recommend-v0", **kw), "EcomEnv"),
    (lambda **kw: gym.make_vec("ecomsim/Slate-v0", num_envs=2, **kw), "EcomVectorEnv"),
    (lambda **kw: EcomEnv(**kw), "EcomEnv"),
], ids=["make", "make_vec", "class"])
def test_unknown_keyword_is_pythons_own_type_error_with_a_hint(make, owner):
    with pytest.raises(TypeError, match=rf"^{owner}\.__init__\(\) got an unexpected keyword argument 'num_candidate'\. "
                                        r"Did you mean 'num_candidates'\? Valid keys: \["):
        make(num_candidate=10, user_model="reference")
    # TorchRL passes frameskip=1 and drops it only on exactly this wording
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'frameskip'"):
        make(frameskip=1, user_model="reference")


# ------------------------------------------------------- autoreset modes
def _sync(env_id: str, n: int, mode: AutoresetMode, **kwargs) -> gym.vector.VectorEnv:
    """Gymnasium's own vector env of single envs, built the way its users build it."""
    vector_kwargs = {"autoreset_mode": mode} if SYNC_MODES else {}
    return gym.make_vec(env_id, num_envs=n, vectorization_mode="sync", vector_kwargs=vector_kwargs, **kwargs)


def _assert_info_equal(native: dict, sync: dict, where: np.ndarray | None = None) -> None:
    """Every step key equal on the rows the sync env reports (its ``_key`` masks), values compared as numbers."""
    for key in STEP_KEYS:
        rows = sync[f"_{key}"] if where is None else where
        a, b = np.asarray(native[key])[rows], np.asarray(sync[key])[rows]
        np.testing.assert_array_equal(a.astype(np.float64), np.stack(list(b)).astype(np.float64) if b.dtype == object
                                      else b.astype(np.float64), err_msg=key)


@pytest.mark.parametrize("mode", list(AutoresetMode), ids=lambda m: m.name)
@pytest.mark.parametrize("user_model", MODELS)
@pytest.mark.parametrize("env_id, limit", [("ecomsim/Recommend-v0", None), ("ecomsim/Slate-v0", 5)],
                         ids=["recommend", "slate-time-limit"])
def test_native_vector_env_equals_sync_vector_env_in_every_autoreset_mode(mode, user_model, env_id, limit):
    """Bit for bit, with many autoresets (max_steps=6; the slate case also passes max_episode_steps=5, Gymnasium's
    TimeLimit rule), in each mode; DISABLED restarts the ended sub-envs with reset_mask as its users do."""
    if mode != AutoresetMode.NEXT_STEP and not SYNC_MODES:
        pytest.skip(f"Gymnasium {gym.__version__}'s SyncVectorEnv has no autoreset_mode (1.1+)")
    n, kw = 6, {"user_model": user_model, "max_steps": 6}
    if limit is not None:
        kw["max_episode_steps"] = limit
    native, sync = gym.make_vec(env_id, num_envs=n, autoreset_mode=mode, **kw), _sync(env_id, n, mode, **kw)
    assert native.unwrapped.autoreset_mode == mode and native.metadata["autoreset_mode"] == mode
    rng = np.random.default_rng(5)
    obs_n, info_n = native.reset(seed=40)
    obs_s, info_s = sync.reset(seed=40)
    np.testing.assert_array_equal(obs_n, obs_s)
    _assert_info_equal(info_n, info_s)
    ends = 0
    for t in range(40):
        actions = native.action_space.sample() if t % 7 else rng.integers(0, 20, size=native.action_space.shape)
        out_n, out_s = native.step(actions), sync.step(actions)
        for a, b in zip(out_n[:4], out_s[:4]):
            np.testing.assert_array_equal(a, b)
        info_n, info_s = out_n[4], out_s[4]
        _assert_info_equal(info_n, info_s)
        ended = out_n[2] | out_n[3]
        ends += int(ended.sum())
        if mode == AutoresetMode.SAME_STEP:
            assert ("final_obs" in info_n) == ("final_obs" in info_s) == bool(ended.any())
            if ended.any():
                for key in ("_final_obs", "_final_info"):
                    np.testing.assert_array_equal(info_n[key], info_s[key])
                for i in np.flatnonzero(ended):
                    np.testing.assert_array_equal(info_n["final_obs"][i], info_s["final_obs"][i])
                _assert_info_equal(info_n["final_info"], info_s["final_info"], where=ended)
        if mode == AutoresetMode.DISABLED and ended.any():
            with pytest.raises(RuntimeError, match=r"have ended and autoreset_mode is DISABLED"):
                native.step(actions)
            obs_n, info_n = native.reset(options={"reset_mask": ended})
            obs_s, info_s = sync.reset(options={"reset_mask": ended.copy()})
            np.testing.assert_array_equal(obs_n, obs_s)
            _assert_info_equal(info_n, info_s)
    assert ends >= 10, "the run must exercise autoresets"


def test_make_vec_passes_the_autoreset_mode_by_name_too():
    env = gym.make_vec("ecomsim/Recommend-v0", num_envs=2, autoreset_mode="SAME_STEP", user_model="reference")
    assert env.unwrapped.autoreset_mode == AutoresetMode.SAME_STEP
    assert parse_autoreset_mode("Disabled") == parse_autoreset_mode(AutoresetMode.DISABLED) == AutoresetMode.DISABLED
    with pytest.raises(ValueError, match=r"autoreset_mode must be one of \['NEXT_STEP', 'SAME_STEP', 'DISABLED'\].*"
                                         r"got 'SAME-STEP'. Did you mean 'SAME_STEP'\?"):
        EcomVectorEnv(2, autoreset_mode="SAME-STEP", user_model="reference")


def test_partial_reset_with_seeds_restarts_as_seeded_single_envs():
    """reset(seed=[...], options={"reset_mask": m}): masked rows restart as single envs with that seed, rows whose
    seed is None continue their streams, the others go on untouched."""
    env = EcomVectorEnv(3, autoreset_mode="DISABLED", user_model="reference")
    obs0, _ = env.reset(seed=1)
    env.step(np.zeros(3, dtype=np.int64))
    before = env.core.observe()
    obs, _ = env.reset(seed=[7, None, 9], options={"reset_mask": np.array([True, True, False])})
    single = EcomEnv(user_model="reference")
    np.testing.assert_array_equal(obs[0], single.reset(seed=7)[0])
    np.testing.assert_array_equal(obs[2], before[2])
    assert env.core.step_count.tolist() == [0, 0, 1]


@pytest.mark.parametrize("mask, error, match", [
    ([True, False], TypeError, r"options\['reset_mask'\] must be a numpy array, got list"),
    (np.array([True]), ValueError, r"must have shape \(num_envs=2,\), got \(1,\)"),
    (np.array([1, 0]), TypeError, r"must have dtype bool, got int64"),
    (np.array([False, False]), ValueError, r"at least one True"),
])
def test_bad_reset_mask(mask, error, match):
    env = EcomVectorEnv(2, autoreset_mode="DISABLED", user_model="reference")
    env.reset(seed=0)
    with pytest.raises(error, match=match):
        env.reset(options={"reset_mask": mask})


# ----------------------------------------------------------------- spec
@pytest.mark.parametrize("env_id", IDS)
def test_spec_max_episode_steps_is_max_steps_and_no_time_limit_is_stacked(env_id):
    assert gym.make(env_id).spec.max_episode_steps == 50
    env = gym.make(env_id, max_steps=12, user_model="reference")
    assert env.spec.max_episode_steps == 12 and env.unwrapped.spec.max_episode_steps == 12
    assert not any(isinstance(w, gym.wrappers.TimeLimit) for w in _wrappers(env))
    assert EcomEnv(user_model="reference").spec is None  # built directly: no spec, as Gymnasium's own envs
    # max_episode_steps of gym.make: Gymnasium's TimeLimit on top, and the spec says so
    assert gym.make(env_id, max_episode_steps=7, user_model="reference").spec.max_episode_steps == 7


def _wrappers(env):
    while isinstance(env, gym.Wrapper):
        yield env
        env = env.env


@pytest.mark.parametrize("env_id", IDS)
def test_time_aware_and_frame_stack_wrap_every_id(env_id):
    env = TimeAwareObservation(gym.make(env_id, max_steps=9, user_model="reference"))
    stacked = FrameStackObservation(gym.make(env_id, user_model="reference"), stack_size=3)
    obs, _ = env.reset(seed=3)
    s_obs, _ = stacked.reset(seed=3)
    assert s_obs.shape == (3,) + stacked.unwrapped.observation_space.shape and s_obs in stacked.observation_space
    times = [obs[-1]]
    action = env.action_space.sample() * 0 + np.arange(env.action_space.shape[0]) if env.action_space.shape else 0
    for _ in range(30):
        obs, _, term, trunc, _ = env.step(action)
        s_obs, *_ = stacked.step(action)
        assert obs in env.observation_space and s_obs in stacked.observation_space
        times.append(obs[-1])
        if term or trunc:
            break
    assert times == list(range(len(times))) and len(times) - 1 <= 9
    assert not trunc or times[-1] == 9, "truncated exactly at max_steps, where the time feature reaches its bound"


# --------------------------------------------------------------- TorchRL
@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torchrl") is None,
                    reason="TorchRL is not installed (pip install torchrl: it keeps an installed torch >= 2.1)")
@pytest.mark.parametrize("mode", [None, "DISABLED", pytest.param("SAME_STEP", marks=pytest.mark.xfail(
    strict=True, raises=AssertionError, reason="TorchRL fills the final observation of sub-envs that did not end with "
    "zeros and checks it against the Box, whose price_sensitivity low is the population's minimum (> 0); Gymnasium's "
    "SyncVectorEnv of our single envs fails the same way. DISABLED is TorchRL's preferred mode."))],
    ids=["GymEnv", "vector-DISABLED", "vector-SAME_STEP"])
def test_torchrl_builds_and_rolls_out(mode):
    """TorchRL's GymEnv(id) (it passes frameskip=1 first) and its wrapper of the native vector env."""
    from torchrl.envs import GymEnv, GymWrapper
    from torchrl.envs.utils import check_env_specs

    if mode is None:
        env = GymEnv("ecomsim/Recommend-v0", user_model="reference", max_steps=8)
    else:
        if not SYNC_MODES:
            pytest.skip("TorchRL reads autoreset modes from Gymnasium >= 1.1")
        env = GymWrapper(gym.make_vec("ecomsim/Slate-v0", num_envs=4, autoreset_mode=mode, user_model="reference",
                                      max_steps=8))
    check_env_specs(env)
    env.set_seed(0)
    td = env.rollout(40, break_when_any_done=False)
    done = td["next", "done"]
    assert done.any(), "sessions of 8 steps end within 40 steps"
    assert td["next", "observation"].isfinite().all()
