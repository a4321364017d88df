"""Environment contracts: checkers, seeding, single == vector, spaces, bad input."""

from __future__ import annotations

import dataclasses
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import ecomsim
from ecomsim.envs import EcomEnv, EcomVectorEnv

IDS = list(ecomsim.ENV_IDS)
REF = {"user_model": "reference"}


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("kwargs", [{}, REF, {"catalog": "gan", "num_items": 400}, dict(REF, catalog="gan")],
                         ids=["dnn", "reference", "dnn-gan", "reference-gan"])
def test_checkers_pass_without_a_warning(env_id, kwargs):
    """Gymnasium's and SB3's checkers (SB3's extra warnings on) on every id: any warning fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make(env_id, **kwargs)  # the passive checker too: observations inside the Box
        gym_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(gym.make(env_id, **kwargs), warn=True)
        env.reset(seed=0)
        for _ in range(30):
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            if term or trunc:
                env.reset()
    space = env.observation_space
    assert np.isfinite(space.low).all() and np.isfinite(space.high).all() and (space.low < space.high).all()


@pytest.mark.parametrize("kwargs", [{}, {"price_band": [20.0, 400.0]}, {"category_mix": {"books": 1, "grocery": 3}}])
def test_gan_catalogs_stay_inside_the_observation_bounds(kwargs):
    """Every drawn catalog lies within the generator's stated support (``set_catalog`` raises otherwise) and every
    observation inside the Box; the bounds are the generator's, not the loosest ones any catalog would need."""
    env = EcomEnv(catalog="gan", num_items=400, **REF, **kwargs)
    space = env.observation_space
    lay = env.core.layout
    col = lay.context_dim + lay.candidate_names.index("log_price_over_budget")
    assert space.high[col] < 50  # ANY_CATALOG's bounds would be about 700
    for seed in range(8):
        obs, _ = env.reset(seed=seed)
        assert space.contains(obs)
        for _ in range(5):
            obs, _, term, trunc, _ = env.step(env.action_space.sample())
            assert space.contains(obs)
            if term or trunc:
                break


def rollout(env, seed, steps=50, action_seed=123):
    rng = np.random.default_rng(action_seed)
    obs, _ = env.reset(seed=seed)
    traj = [obs.copy()]
    rewards = []
    for _ in range(steps):
        if env.unwrapped.config.mode == "recommend":
            a = int(rng.integers(env.action_space.n))
        else:
            a = rng.integers(0, env.unwrapped.config.num_candidates, size=env.unwrapped.config.slate_size)
        obs, r, term, trunc, info = env.step(a)
        traj.append(obs.copy())
        rewards.append((r, term, trunc, tuple(np.atleast_1d(info["items"]))))
        if term or trunc:
            obs, _ = env.reset()
            traj.append(obs.copy())
    return np.array(traj), rewards


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_trajectory(env_id):
    a = rollout(gym.make(env_id, **REF), seed=7)
    b = rollout(gym.make(env_id, **REF), seed=7)
    c = rollout(gym.make(env_id, **REF), seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]
    assert a[0].shape != c[0].shape or not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("mode, user_model", [("recommend", "reference"), ("slate", "reference"),
                                              ("recommend", "dnn"), ("slate", "dnn")])
def test_single_equals_vector_of_one(mode, user_model):
    """Observations, rewards, ends and every info entry, the autoreset steps included."""
    kw = dict(REF, mode=mode, slate_size=1 if mode == "recommend" else 3, user_model=user_model)
    single = EcomEnv(**kw)
    vec = EcomVectorEnv(num_envs=1, **kw)
    rng = np.random.default_rng(0)
    o1, i1 = single.reset(seed=3)
    o2, i2 = vec.reset(seed=3)

    def same(o1, i1, o2, i2):
        np.testing.assert_array_equal(o1, o2[0])
        assert set(i1) == set(i2)
        for key in i1:
            np.testing.assert_array_equal(i1[key], i2[key][0], err_msg=key)

    same(o1, i1, o2, i2)
    episodes = 0
    for _ in range(400):
        if mode == "recommend":
            a = int(rng.integers(20))
            va = np.array([a])
        else:
            a = rng.integers(0, 20, size=3)
            va = a[None]
        o1, r1, t1, tr1, i1 = single.step(a)
        o2, r2, t2, tr2, i2 = vec.step(va)
        same(o1, i1, o2, i2)
        assert (r1, t1, tr1) == (r2[0], t2[0], tr2[0])
        if t1 or tr1:
            episodes += 1
            o1, i1 = single.reset()
            o2, r2, t2, tr2, i2 = vec.step(va)  # NEXT_STEP autoreset: this action is ignored
            same(o1, i1, o2, i2)  # the new session's start: nothing shown, clicked or earned
            assert (r2[0], t2[0], tr2[0]) == (0.0, False, False)
    assert episodes >= 5


def test_vector_sub_env_equals_single_with_offset_seed():
    vec = EcomVectorEnv(num_envs=4, **REF)
    obs, _ = vec.reset(seed=10)
    for i in range(4):
        single = EcomEnv(**REF)
        o, _ = single.reset(seed=10 + i)
        np.testing.assert_array_equal(o, obs[i])
    acts = np.array([0, 5, 9, 19])
    obs_v, r_v, *_ = vec.step(acts)
    for i in range(4):
        single = EcomEnv(**REF)
        single.reset(seed=10 + i)
        o, r, *_ = single.step(int(acts[i]))
        np.testing.assert_array_equal(o, obs_v[i])
        assert r == r_v[i]


def test_make_vec_is_native_batched():
    env = gym.make_vec("ecomsim/Recommend-v0", num_envs=8, **REF)
    assert isinstance(env.unwrapped, EcomVectorEnv)
    obs, info = env.reset(seed=0)
    assert obs.shape == (8, env.unwrapped.core.layout.obs_dim)
    assert info["session_length"].shape == (8,)


@pytest.mark.parametrize("env_id", IDS)
def test_random_steps_stay_in_spaces_and_truncate(env_id):
    max_steps = 15
    env = gym.make_vec(env_id, num_envs=64, max_steps=max_steps, **REF)
    space = env.unwrapped.single_observation_space
    obs, _ = env.reset(seed=1)
    k = env.unwrapped.config.slate_size
    max_price = env.unwrapped.core.catalog.price.max()
    lengths = []
    prev_done = np.zeros(64, dtype=bool)
    for _ in range(3000 // 64 * 4):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        assert np.isfinite(obs).all()
        assert all(space.contains(o) for o in obs)
        assert ((r >= 0) & (r <= k)).all()
        assert not (term & trunc).any()
        ended = (term | trunc) & ~prev_done
        lengths.extend(info["session_length"][ended].tolist())
        assert (info["session_length"][trunc] == max_steps).all()
        assert (info["session_length"][term] <= max_steps).all()
        prev_done = term | trunc
    assert max(lengths) == max_steps
    rev = gym.make_vec(env_id, num_envs=16, reward="revenue", **REF)
    rev.reset(seed=0)
    for _ in range(200):
        _, r, *_ = rev.step(rev.action_space.sample())
        assert ((r >= 0) & (r <= k * max_price)).all()


def test_clicks_match_reference_probabilities():
    """Sampled clicks vs the model's probabilities: |z| < 4 over ~100k impressions."""
    env = EcomVectorEnv(num_envs=2000, **REF)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    clicks, expected, var = 0.0, 0.0, 0.0
    purchases, exp_p, var_p = 0.0, 0.0, 0.0
    for _ in range(50):
        core = env.core
        acts = rng.integers(0, 20, size=2000)
        alive = ~env._autoreset
        r = core.candidate_reaction()
        p = r.click[np.arange(2000), acts][alive]
        pp = r.purchase_total[np.arange(2000), acts][alive]
        _, _, _, _, info = env.step(acts)
        clicks += info["clicks"][alive].sum()
        purchases += info["purchases"][alive].sum()
        expected += p.sum()
        var += (p * (1 - p)).sum()
        exp_p += pp.sum()
        var_p += (pp * (1 - pp)).sum()
    assert abs(clicks - expected) / np.sqrt(var) < 4.0
    assert abs(purchases - exp_p) / np.sqrt(var_p) < 4.0


def test_higher_price_lowers_purchase_probability():
    env = EcomVectorEnv(num_envs=200, **REF)
    env.reset(seed=0)
    core = env.core
    items = core.candidates[:, :1]
    base = core.shopper.reaction(items, np.zeros(1))
    cat = core.catalog
    dear = dataclasses.replace(cat, price=cat.price * 2.0)  # a validated copy with doubled prices
    env2 = EcomVectorEnv(num_envs=200, catalog_obj=dear, **REF)
    env2.reset(seed=0)
    np.testing.assert_array_equal(env2.core.candidates[:, :1], items)
    pricier = env2.core.shopper.reaction(items, np.zeros(1))
    assert (pricier.cart < base.cart).all()
    assert (pricier.purchase <= base.purchase).all()
    assert (pricier.purchase_total <= base.purchase_total).all()
    assert (pricier.purchase_total < base.purchase_total).mean() > 0.95  # equal only where both underflow to 0


@pytest.mark.parametrize("user_model", ["reference", "dnn"])
def test_irrelevant_items_exhaust_patience(user_model):
    """Always showing the least relevant candidate ends sessions sooner than the most relevant."""

    def mean_length(pick):
        env = EcomVectorEnv(num_envs=500, max_steps=100, user_model=user_model)
        env.reset(seed=2)
        shopper = env.core.shopper
        affinity = shopper.affinity if user_model == "reference" else shopper.tracker.affinity
        done_len = []
        for _ in range(60):
            _, _, te, tr, info = env.step(pick(affinity(env.core.candidates), axis=1))
            done_len.extend(info["session_length"][te | tr].tolist())
        return np.mean(done_len)

    assert mean_length(np.argmin) < 0.75 * mean_length(np.argmax)


def test_satisfied_need_stops_category():
    env = EcomVectorEnv(num_envs=50, **REF)
    env.reset(seed=0)
    core = env.core
    items = core.candidates[:, :1]
    before = core.shopper.reaction(items, np.zeros(1)).click
    core.session.bought[np.arange(50), core.catalog.category[items[:, 0]]] = True
    after = core.shopper.reaction(items, np.zeros(1)).click
    assert (after < 0.25 * before).all()


# ------------------------------------------------------------------ bad input
def test_unknown_config_key_suggests():
    with pytest.raises(TypeError, match=r"got an unexpected keyword argument 'num_candidate'.*Did you mean 'num_candidates'"):
        gym.make("ecomsim/Recommend-v0", num_candidate=10)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_candidates": 1}, r"num_candidates must be in \[2, 1000\], got 1"),
        ({"max_steps": 0}, r"max_steps must be in \[1, 100000\], got 0"),
        ({"reward": "purchases"}, r"reward must be one of .*got 'purchases'.*Did you mean 'purchase'"),
        ({"mode": "slate", "slate_size": 30}, r"slate_size must be in \[1, num_candidates=20\], got 30"),
        ({"channel": "tv"}, r"channel must be one of \['app', 'web', 'social'\], got 'tv'"),
        ({"popular_share": 0.8, "personal_share": 0.5}, r"popular_share \+ personal_share must be <= 1"),
        ({"max_steps": 2.5}, r"max_steps must be an integer"),
        ({"catalog": "nonexistent"}, r"catalog must be a shipped name .* got 'nonexistent'"),
        ({"device": "gpu"}, r"device must be 'cpu', 'cuda' or 'cuda:N' \(N a device index\), got 'gpu'"),
        ({"device": "cuda:x"}, r"device must be 'cpu', 'cuda' or 'cuda:N'"),
    ],
)
def test_bad_config_values(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        EcomEnv(**{**REF, **kwargs})


@pytest.mark.parametrize("kwargs", [{"user_model": "dnn"}, {"user_model": "reference", "catalog": "gan"}, REF])
def test_cuda_device_needs_a_cuda_device_torch_can_see(kwargs):
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ValueError, match=rf"device='cuda:{count}' needs a CUDA device torch can see; torch .* sees"):
        EcomEnv(device=f"cuda:{count}", **kwargs)


def test_bad_actions_single():
    env = EcomEnv(**REF)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be an integer candidate index in \[0, 19\], got 20$"):
        env.step(20)
    with pytest.raises(ValueError, match=r"action must be an integer candidate index in \[0, 19\], got -1$"):
        env.step(np.int8(-1))
    with pytest.raises(ValueError, match=r"action must be one candidate index.*got shape \(2,\)"):
        env.step([1, 2])
    with pytest.raises(TypeError, match=r"action must be an integer candidate index in \[0, 19\], got 1.5 \(float\)"):
        env.step(1.5)
    with pytest.raises(TypeError, match=r"action must be an integer candidate index in \[0, 19\], got True \(bool\)"):
        env.step(True)
    slate = EcomEnv(mode="slate", slate_size=3, **REF)
    slate.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must have shape \(slate_size=3,\)"):
        slate.step([1, 2])


def test_bad_actions_vector():
    env = EcomVectorEnv(num_envs=4, **REF)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions must have shape \(num_envs=4,\), got \(10,\)"):
        env.step(np.zeros(10, dtype=int))
    with pytest.raises(ValueError, match=r"in \[0, 19\], got \[25\]"):
        env.step(np.array([0, 1, 25, 3]))
    slate = EcomVectorEnv(num_envs=2, mode="slate", slate_size=3, **REF)
    slate.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions must have shape \(num_envs=2, slate_size=3\), got \(2,\)"):
        slate.step(np.zeros(2, dtype=int))


@pytest.mark.parametrize("action", [3.0, np.float64(3.0), np.float32(3.0)], ids=["float", "np.float64", "np.float32"])
def test_whole_number_float_actions_are_refused(action):
    env = gym.make("ecomsim/Recommend-v0", **REF)
    env.reset(seed=0)
    with pytest.raises(TypeError, match=r"action must be an integer candidate index in \[0, 19\], got 3\.0"):
        env.step(action)


def test_float_slate_and_vector_actions_are_refused():
    slate = gym.make("ecomsim/Slate-v0", **REF)
    slate.reset(seed=0)
    with pytest.raises(TypeError, match=r"action must be integers .*got dtype float64"):
        slate.step(np.array([1.0, 2, 3, 4, 5]))
    vec = gym.make_vec("ecomsim/Recommend-v0", num_envs=4, **REF)
    vec.reset(seed=0)
    with pytest.raises(TypeError, match=r"actions must be integer candidate indexes .*got dtype float64"):
        vec.step(np.array([1.0, 2.0, 3.0, 4.0]))


def test_vector_actions_of_another_shape_are_refused():
    vec = gym.make_vec("ecomsim/Recommend-v0", num_envs=4, **REF)
    vec.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions must have shape \(num_envs=4,\), got \(4, 1\)"):
        vec.step(np.zeros((4, 1), dtype=np.int64))


def test_discrete_actions_are_scalars_as_the_space_says():
    """A one-element list is not in ``Discrete`` (``Discrete.contains([3])`` is False): refused, not unpacked."""
    env = gym.make("ecomsim/Recommend-v0", **REF)
    env.reset(seed=0)
    assert not env.action_space.contains([3]) and env.action_space.contains(np.int8(3))
    with pytest.raises(ValueError, match=r"action must be one candidate index, .*got shape \(1,\) \(a Discrete action "
                                         r"is a scalar: pass the index itself\)"):
        env.step([3])


def test_numpy_integer_actions_are_accepted_like_ints():
    """Any numpy integer scalar or dtype, as Python ints: the same trajectory."""
    runs = []
    for cast in (int, np.int8, np.uint16, lambda a: np.asarray(a, dtype=np.int32)):
        env = gym.make("ecomsim/Recommend-v0", **REF)
        env.reset(seed=4)
        runs.append([env.step(cast(a))[1] for a in (3, 0, 7, 19)])
    assert all(r == runs[0] for r in runs)
    slate = gym.make("ecomsim/Slate-v0", **REF)
    slate.reset(seed=0)
    slate.step(np.array([1, 2, 3, 4, 5], dtype=np.uint8))
    vec = gym.make_vec("ecomsim/Recommend-v0", num_envs=4, **REF)
    vec.reset(seed=0)
    vec.step(np.array([1, 2, 3, 4], dtype=np.int16))


def test_numpy_integers_are_accepted_as_counts():
    vec = gym.make_vec("ecomsim/Recommend-v0", num_envs=np.int64(8), **REF)
    assert vec.num_envs == 8 and type(vec.num_envs) is int
    env = gym.make("ecomsim/Recommend-v0", num_candidates=np.int64(10), max_steps=np.int32(5), **REF)
    assert env.action_space.n == 10
    config = env.unwrapped.config
    assert type(config.num_candidates) is int and type(config.max_steps) is int  # the config stays JSON-friendly
    slate = gym.make("ecomsim/Slate-v0", num_candidates=np.int16(6), slate_size=np.uint8(3), **REF)
    assert slate.action_space.shape == (3,)


def test_numpy_integer_seeds_are_accepted():
    env = gym.make("ecomsim/Recommend-v0", **REF)
    a, _ = env.reset(seed=np.int64(3))
    b, _ = env.reset(seed=3)
    np.testing.assert_array_equal(a, b)
    vec = gym.make_vec("ecomsim/Recommend-v0", num_envs=2, **REF)
    np.testing.assert_array_equal(vec.reset(seed=np.uint32(3))[0], vec.reset(seed=[3, np.int64(4)])[0])
    np.testing.assert_array_equal(vec.reset(seed=3)[0][0], a)


def test_vector_seed_list_may_hold_none():
    """Seeded sub-envs are reproducible; a ``None`` entry draws its key from the vector env's ``np_random``."""
    vec = gym.make_vec("ecomsim/Recommend-v0", num_envs=4, **REF)
    a, _ = vec.reset(seed=[0, None, 2, 3])
    b, _ = vec.reset(seed=[0, None, 2, 3])
    np.testing.assert_array_equal(a[[0, 2, 3]], b[[0, 2, 3]])
    assert not np.array_equal(a[1], b[1])  # np_random moved on between the two resets
    single = gym.make("ecomsim/Recommend-v0", **REF)
    np.testing.assert_array_equal(a[2], single.reset(seed=2)[0])
    vec.reset(seed=7)  # a seeded np_random: then the None entries are reproducible too
    c, _ = vec.reset(seed=[None, 1, None, None])
    vec.reset(seed=7)
    np.testing.assert_array_equal(c, vec.reset(seed=[None, 1, None, None])[0])


def test_float_seed_to_the_vector_env_is_named():
    vec = gym.make_vec("ecomsim/Recommend-v0", num_envs=4, **REF)
    with pytest.raises(TypeError, match=r"seed must be an int, None or a list of num_envs=4 ints or None, got 1\.5 \(float\)"):
        vec.reset(seed=1.5)
    with pytest.raises(ValueError, match=r"seed must be an int, None or a list of num_envs=4 ints or None, got a list of 3"):
        vec.reset(seed=[0, 1, 2])
    with pytest.raises(TypeError, match=r"seed\[1\] must be an integer >= 0 or None, got 2\.0 \(float\)"):
        vec.reset(seed=[0, 2.0, None, 3])


def test_negative_seed_is_a_value_error_naming_seed():
    env = gym.make("ecomsim/Recommend-v0", **REF)
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0, got -1"):
        env.reset(seed=-1)
    with pytest.raises(TypeError, match=r"seed must be an integer >= 0 or None, got True \(bool\)"):
        env.reset(seed=True)


def test_slate_size_default_above_num_candidates_names_both():
    with pytest.raises(ValueError, match=r"slate_size must be in \[1, num_candidates=2\], got 5 \(5 is "
                                         r"ecomsim/Slate-v0's default slate_size"):
        gym.make("ecomsim/Slate-v0", num_candidates=2, **REF)


def test_step_before_reset():
    with pytest.raises(RuntimeError, match="reset"):
        EcomEnv(**REF).step(0)


def test_slate_repeated_pick_leaves_slot_empty():
    env = EcomVectorEnv(num_envs=3, mode="slate", slate_size=3, **REF)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([[1, 1, 2], [4, 5, 4], [0, 1, 2]]))
    assert info["items"][0, 1] == -1 and info["items"][0, 0] >= 0 and info["items"][0, 2] >= 0
    assert info["items"][1, 2] == -1
    assert (info["items"][2] >= 0).all()
    assert not info["clicked"][0, 1] and not info["clicked"][1, 2]
