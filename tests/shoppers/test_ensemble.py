"""The behaviour ensemble: files, bootstrap, per-session members in the compiled step, the MOPO penalty."""

from __future__ import annotations

import copy
import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import ecomsim  # noqa: F401  (registers the ids)
from ecomsim.data.reference_logs import log_reference_world
from ecomsim.shoppers.weights import load_net, shipped_weights_path
from ecomsim.shoppers.ensemble import MEMBER_SALT, bootstrap_sessions, load_ensemble, save_ensemble

K = 3


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory) -> str:
    """Three members: the shipped network with seeded noise on its weights (distinct models, no training)."""
    net, card = load_net(shipped_weights_path())
    members = []
    for j in range(K):
        m = copy.deepcopy(net)
        gen = torch.Generator().manual_seed(j)
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.15 * torch.randn(p.shape, generator=gen) * p.std())
        members.append(m)
    path = tmp_path_factory.mktemp("ens") / "ens.pt"
    save_ensemble(members, path, {"hidden": card["hidden"], "feature_schema": card["feature_schema"], "members": []})
    return str(path)


def _run(ensemble: str, n: int | None, steps: int = 40, env_id: str = "ecomsim/Slate-v0", **kw):
    env = gym.make(env_id, ensemble=ensemble, max_steps=8, **kw) if n is None else \
        gym.make_vec(env_id, num_envs=n, ensemble=ensemble, max_steps=8, **kw)
    rng = np.random.default_rng(4)
    env.reset(seed=10)
    out = []
    for _ in range(steps):
        shape = (5,) if n is None else (n, 5)
        o, r, te, tr, info = env.step(rng.integers(0, 20, size=shape))
        out.append((o, np.copy(r), np.asarray(info["purchased"]).copy(), info.get("disagreement"), te | tr))
        if n is None and (te or tr):
            env.reset()
    return env, out


def test_files_round_trip_and_refuse_tampering(ensemble, tmp_path):
    nets, card = load_ensemble(ensemble)
    assert len(nets) == K == card["num_members"] and card["format"] == "ecomsim-behavior-ensemble-v1"
    raw = open(ensemble, "rb").read()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    (tmp_path / "bad.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="have sha256 .* but the card says"):
        load_ensemble(bad)
    with pytest.raises(FileNotFoundError, match="scripts/train_ensemble.py"):
        load_ensemble(tmp_path / "none.pt")


def test_bootstrap_resamples_whole_sessions():
    steps = log_reference_world(300, seed=1).steps
    s = bootstrap_sessions(steps, np.random.default_rng(0))[1]
    ids, counts = np.unique(s.session, return_counts=True)
    orig = dict(zip(*np.unique(steps[1].session, return_counts=True)))
    assert all(c % orig[i] == 0 for i, c in zip(ids, counts))  # a drawn session brings all its steps, c times
    drawn = sum(c // orig[i] for i, c in zip(ids, counts))
    assert drawn == 300 and 0.5 < len(ids) / 300 < 0.75  # ~63% distinct: with replacement


@pytest.mark.parametrize("n", [None, 4, 48])  # a single env; the compiled step (<= 128 rows); torch (240 rows)
def test_penalty_zero_keeps_outcomes_and_reports_disagreement(ensemble, n):
    for kw in ({"ensemble_member": 1}, {"shopper_sampling": "per_session"}):
        _, off = _run(ensemble, n, **kw)
        _, zero = _run(ensemble, n, uncertainty_penalty=0.0, **kw)
        _, lam = _run(ensemble, n, uncertainty_penalty=3.0, **kw)
        for a, b, c in zip(off, zero, lam):
            for x, y in zip(a[:3], b[:3]):
                np.testing.assert_array_equal(x, y)
            assert a[3] is None and np.all(np.asarray(b[3]) >= 0)
            np.testing.assert_array_equal(c[2], b[2])  # the penalty changes the reward, never the outcomes
            np.testing.assert_allclose(c[1], b[1] - 3.0 * np.asarray(b[3]), rtol=0, atol=1e-12)
        assert np.mean([np.mean(b[3]) for b in zero]) > 0


def test_per_session_member_is_that_members_world(ensemble):
    """A session of a per-session env follows exactly the trajectory of the env fixed to its member (until the
    session ends: the next one draws its member anew)."""
    env, per = _run(ensemble, 12, shopper_sampling="per_session")
    env.reset(seed=10)
    member = env.unwrapped.core.shopper.tracker.member.copy()  # the members of the first sessions
    assert set(member.tolist()) == set(range(K))
    for m in range(K):
        _, fixed = _run(ensemble, 12, ensemble_member=m)
        live = member == m
        compared = 0
        for (o1, r1, p1, _, end1), (o2, r2, p2, _, end2) in zip(per, fixed):
            np.testing.assert_array_equal(o1[live], o2[live])
            np.testing.assert_array_equal(p1[live], p2[live])
            compared += live.sum()
            live &= ~end1
        assert compared >= 12
def test_members_drawn_from_a_side_stream(ensemble):
    """Uniform over members (chi-square, 3000 sessions, p > 0.001) and the session's own stream untouched:
    with one member the per-session env equals the plain one."""
    env = gym.make_vec("ecomsim/Recommend-v0", num_envs=3000, shopper_sampling="per_session", ensemble=ensemble)
    env.reset(seed=0)
    counts = np.bincount(env.unwrapped.core.shopper.tracker.member, minlength=K)
    chi2 = ((counts - 1000.0) ** 2 / 1000.0).sum()
    assert chi2 < 13.8, counts  # chi-square, 2 dof, p = 0.001
    keys = env.unwrapped.core.state.streams.key[:5]
    u = env.unwrapped.core.state.streams.side_uniform(np.arange(5), MEMBER_SALT)
    assert np.array_equal(env.unwrapped.core.shopper.tracker.member[:5], (u * K).astype(int))
    assert keys.dtype == np.uint64 and (env.unwrapped.core.state.streams.counter[:5] > 0).all()


def test_single_env_equals_vector_sub_env(ensemble):
    _, vec = _run(ensemble, 3, steps=5, shopper_sampling="per_session", uncertainty_penalty=1.0)
    env = gym.make("ecomsim/Slate-v0", ensemble=ensemble, max_steps=8, shopper_sampling="per_session",
                   uncertainty_penalty=1.0)
    rng = np.random.default_rng(4)
    env.reset(seed=11)  # sub-env 1 of a vector env reset with seed 10
    for o, r, p, d, _ in vec:
        a = rng.integers(0, 20, size=(3, 5))
        o1, r1, *_, info = env.step(a[1])
        np.testing.assert_array_equal(o1, o[1])
        assert r1 == r[1] and info["disagreement"] == d[1]


@pytest.mark.parametrize("kwargs, message", [
    ({"shopper_sampling": "per_session", "user_model": "reference"}, "need the learned shoppers"),
    ({"uncertainty_penalty": -1.0}, r"uncertainty_penalty must be in \[0.0, 1000000.0\], got -1.0"),
    ({"uncertainty_penalty": float("nan")}, r"uncertainty_penalty must be in \[0.0, 1000000.0\], got nan"),
    ({"shopper_sampling": "sometimes"}, "shopper_sampling must be one of"),
    ({"ensemble_member": 1, "shopper_sampling": "per_session"}, "set one of them"),
    ({"ensemble": "/x.pt"}, "ensemble applies with shopper_sampling"),
])
def test_bad_options_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gym.make("ecomsim/Recommend-v0", **kwargs)


def test_member_out_of_range(ensemble):
    with pytest.raises(ValueError, match=r"ensemble_member must be in \[0, 2\] \(the ensemble has 3 members\), got 5"):
        gym.make("ecomsim/Recommend-v0", ensemble=ensemble, ensemble_member=5)
