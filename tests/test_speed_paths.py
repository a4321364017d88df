"""Fast paths equal the general paths bit for bit (speed itself lives in scripts/benchmark.py)."""

from __future__ import annotations

import numpy as np
import pytest

from ecomsim.config import CHANNELS, EnvConfig
from ecomsim.envs import EcomVectorEnv, build_core
from ecomsim.observation import LOG_BUDGET_CENTER
from ecomsim.population import SEGMENTS
from ecomsim.reference import ReferenceWorld
from ecomsim.rng import SINGLE_BLOCK, SessionStreams


def test_single_stream_block_equals_batched_draws() -> None:
    """One stream served from its block == the same stream drawn inside a batch, across refills."""
    keys = np.array([11, 2**63 + 5, 7], dtype=np.uint64)
    single, batch = SessionStreams(1), SessionStreams(3)
    single.set_keys(np.array([0]), keys[1:2])
    batch.set_keys(np.arange(3), keys)
    rng = np.random.default_rng(0)
    sizes = list(rng.integers(1, 90, size=200)) + [SINGLE_BLOCK, SINGLE_BLOCK + 3, 5]
    for m in sizes:
        m = int(m)
        a = single.uniform(m) if rng.random() < 0.5 else single.uniform(m, np.array([0]))
        np.testing.assert_array_equal(a, batch.uniform(m)[1:2])
        assert single.counter[0] == batch.counter[1]
    np.testing.assert_array_equal(single.normal(9), batch.normal(9)[1:2])
    single.set_keys(np.array([0]), keys[2:3])  # new key: the block is dropped
    batch.set_keys(np.array([1]), keys[2:3])
    np.testing.assert_array_equal(single.uniform(40), batch.uniform(40)[1:2])
    with pytest.raises(ValueError):
        single.uniform(4)[0, 0] = 1.0  # the block is read-only: a caller cannot corrupt the stream


@pytest.mark.parametrize("kwargs", [{}, {"personal_share": 0.0}, {"popular_share": 0.9, "personal_share": 0.1}])
def test_one_session_retrieval_equals_batched(kwargs) -> None:
    core = build_core(EnvConfig(**kwargs), 64, shopper=ReferenceWorld())
    core.reset(np.arange(64), np.arange(64, dtype=np.uint64))
    m = core.num_candidates
    u = np.random.default_rng(1).random((64, 2 * m + 2))
    u[::3, m - 4 : m] = u[::3, m - 5 : m - 1]  # force duplicates among the random items
    batched = core._retrieve(u, np.arange(64))
    assert (np.sort(batched, axis=1)[:, 1:] == np.sort(batched, axis=1)[:, :-1]).sum() < 64 * m  # sanity
    for i in range(64):
        np.testing.assert_array_equal(core._retrieve(u[i : i + 1], np.array([i])), batched[i : i + 1])


def _plain_observe(core) -> np.ndarray:
    """The observation by its definition (temporaries and concatenation), as first written."""
    n = core.num_envs
    pt = core.portraits
    seg = np.eye(len(SEGMENTS), dtype=np.float32)[pt.segment]
    ch = np.eye(len(CHANNELS), dtype=np.float32)[pt.channel]
    log_budget = np.log(pt.budget) - LOG_BUDGET_CENTER
    steps = core.step_count.astype(np.float32)
    session = np.column_stack(
        [steps / core.config.max_steps, core.clicks / (1.0 + core.clicks), core.carts / (1.0 + core.carts),
         core.purchases / (1.0 + core.purchases), core.no_click_run / (1.0 + core.no_click_run),
         core.last_clicked, core.bought]
    ).astype(np.float32)
    cand = core.candidates
    static = core.item_features[cand]
    seen = (core.repeat_counts(cand) > 0).astype(np.float32)
    aff = np.clip(np.einsum("nmd,nd->nm", core._emb64[cand], pt.interest), -1.0, 1.0)
    ratio = core._log_price[cand] - np.log(pt.budget)[:, None]
    dyn = np.stack([seen, aff, ratio, core.category_bought(cand)], axis=2).astype(np.float32)
    candidates = np.concatenate([static, dyn], axis=2).reshape(n, -1)
    return np.concatenate(
        [seg, ch, pt.interest.astype(np.float32), log_budget[:, None].astype(np.float32),
         pt.price_sensitivity[:, None].astype(np.float32), session, candidates],
        axis=1,
    )


@pytest.mark.parametrize("num_envs, mode", [(1, "recommend"), (37, "recommend"), (5, "slate")])
def test_observation_equals_plain_definition(num_envs: int, mode: str) -> None:
    env = EcomVectorEnv(num_envs=num_envs, user_model="reference", mode=mode, slate_size=1 if mode == "recommend" else 3)
    obs, _ = env.reset(seed=4)
    rng = np.random.default_rng(0)
    for _ in range(60):
        np.testing.assert_array_equal(obs, _plain_observe(env.core))
        obs, *_ = env.step(env.action_space.sample() if mode == "slate" else rng.integers(0, 20, size=num_envs))


def test_inverse_cdf_equals_searchsorted() -> None:
    from ecomsim.rng import InverseCDF

    rng = np.random.default_rng(3)
    for size in (1, 7, 100, 5000):
        cdf = np.cumsum(rng.random(size) ** 3)
        cdf /= cdf[-1]
        draw = InverseCDF(cdf)
        edges = np.arange(InverseCDF.BUCKETS) / InverseCDF.BUCKETS
        u = np.concatenate([rng.random(20_000), cdf[:-1], np.nextafter(cdf[:-1], 0.0), edges,
                            np.nextafter(edges[1:], 0.0), [0.0, 1.0 - 2.0**-53]])
        np.testing.assert_array_equal(draw(u), np.searchsorted(cdf, u, side="right"))
        np.testing.assert_array_equal(draw(u.reshape(-1, 1)), np.searchsorted(cdf, u.reshape(-1, 1), side="right"))


def test_observe_rows_equals_rows_of_observe() -> None:
    env = EcomVectorEnv(num_envs=50, user_model="reference", mode="slate", slate_size=3)
    env.reset(seed=1)
    for _ in range(20):
        env.step(env.action_space.sample())
    full = env.core.observe()
    for rows in (np.array([0]), np.array([3, 7, 49]), np.arange(50)[::-1], np.array([], dtype=np.int64)):
        np.testing.assert_array_equal(env.core.observe(rows), full[rows])
