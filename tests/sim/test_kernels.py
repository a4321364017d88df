"""The compiled kernels equal the plain numpy definitions (speed itself lives in scripts/benchmark.py)."""

from __future__ import annotations

import numpy as np
import pytest

from ecomsim.config import CHANNELS, EnvConfig
from ecomsim.assembly import build_core
from ecomsim.envs import EcomVectorEnv
from ecomsim.shoppers.behavior import SessionTracker
from ecomsim.shoppers.population import SEGMENTS
from ecomsim.shoppers.reference import ReferenceWorld
from ecomsim.sim import kernels, retrieval
from ecomsim.sim.kernels import GOLDEN, LOG_BUDGET_CENTER, MIX_M1, MIX_M2
from ecomsim.sim.retrieval import popular_buckets
from ecomsim.sim.state import RETRIEVAL, SESSION, Block
from ecomsim.sim.streams import SessionStreams


def mix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on a uint64 array, in numpy (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * MIX_M1
    x = x ^ (x >> np.uint64(27))
    x = x * MIX_M2
    return x ^ (x >> np.uint64(31))


def _plain_uniform(keys: np.ndarray, counters: np.ndarray, m: int) -> np.ndarray:
    """The stream definition: number j of stream i is (mix64(mix64(key_i) + (counter_i + j) * GOLDEN) >> 11) / 2**53."""
    base = mix64(keys.astype(np.uint64)) + counters.astype(np.uint64) * GOLDEN
    x = mix64(base[:, None] + np.arange(m, dtype=np.uint64) * GOLDEN)
    return (x >> np.uint64(11)).astype(np.float64) / 2.0**53


def test_stream_draws_equal_definition() -> None:
    keys = np.array([11, 2**63 + 5, 7, 0], dtype=np.uint64)
    streams = SessionStreams(4)
    streams.set_keys(np.arange(4), keys)
    np.testing.assert_array_equal(streams.base, mix64(keys))
    np.testing.assert_array_equal(streams.next_keys(np.array([2, 0])),
                                  mix64(keys[[2, 0]] ^ mix64(np.zeros(2, dtype=np.uint64) + GOLDEN)))
    counters = np.zeros(4, dtype=np.uint64)
    rng = np.random.default_rng(0)
    for _ in range(100):
        m = int(rng.integers(1, 90))
        rows = np.sort(rng.choice(4, size=int(rng.integers(1, 5)), replace=False))
        got = streams.uniform(m, rows) if len(rows) < 4 else streams.uniform(m)
        np.testing.assert_array_equal(got, _plain_uniform(keys[rows], counters[rows], m))
        counters[rows] += np.uint64(m)
        np.testing.assert_array_equal(streams.counter, counters)


def _plain_retrieve(core, u: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The retrieval recipe of ``ecomsim.sim.retrieval`` in numpy, as first written."""
    m, n_pop, n_per = core.num_candidates, core.n_popular, core.n_personal
    num_items = core.catalog.num_items
    tables, pool = core.state.retrieval, core.session.pool
    out = np.empty((len(idx), m), dtype=np.int64)
    pop = np.searchsorted(tables.popular_cdf, u[:, :n_pop], side="right")
    out[:, :n_pop] = tables.popular_items[np.minimum(pop, len(tables.popular_cdf) - 1)]
    if n_per:
        p = pool.shape[1]
        start = (u[:, m] * p).astype(np.int64)
        stride = 1 + (u[:, m + 1] * (p - 1)).astype(np.int64)
        slot = (start[:, None] + stride[:, None] * np.arange(n_per)) % p
        out[:, n_pop : n_pop + n_per] = pool[idx[:, None], slot]
    out[:, n_pop + n_per :] = (u[:, n_pop + n_per : m] * num_items).astype(np.int64)
    dup = np.array([[out[r, j] in out[r, :j] for j in range(m)] for r in range(len(idx))])
    repl = (u[:, m + 2 : 2 * m + 2] * num_items).astype(np.int64)
    return np.where(dup, repl, out)


@pytest.mark.parametrize("kwargs", [{}, {"personal_share": 0.0}, {"popular_share": 0.9, "personal_share": 0.1}])
def test_retrieval_equals_definition(kwargs) -> None:
    core = build_core(EnvConfig(**kwargs), 64, shopper=ReferenceWorld())
    core.reset(np.arange(64), np.arange(64, dtype=np.uint64))
    m = core.num_candidates
    u = np.random.default_rng(1).random((64, 2 * m + 2))
    u[::3, m - 4 : m] = u[::3, m - 5 : m - 1]  # force duplicates among the random items
    want = _plain_retrieve(core, u, np.arange(64))
    retrieval.retrieve(core.state, u, 0, np.arange(64))
    np.testing.assert_array_equal(core.candidates, want)
    rows = np.array([5, 2, 40])  # a subset, in any order, reads u row by row
    retrieval.retrieve(core.state, u[:3], 0, rows)
    np.testing.assert_array_equal(core.candidates[rows], _plain_retrieve(core, u[:3], rows))


def _popular_all(u, cdf, low, exact):
    """The popular draw of ``kernels.retrieve`` for each ``u`` (one popular candidate per row)."""
    n, items = len(u), len(cdf) + 1
    draws = np.zeros((n, 4))  # 2 M + 2 uniforms for M = 1 candidate
    draws[:, 0] = u
    session = SESSION.allocate({"num_envs": n, "num_categories": 1, "history": 1, "num_candidates": 1,
                                "pool_size": 1, "draws": 4})
    tables = Block(RETRIEVAL, {"popular_items": np.arange(items), "popular_cdf": cdf, "popular_low": low,
                               "popular_exact": exact, "anchors": np.zeros((1, 1)),
                               "anchor_pools": np.zeros((1, 1), dtype=np.int64),
                               "mark": np.zeros(items + 1, dtype=np.int64)})
    consts = (len(SEGMENTS), len(CHANNELS), 1, 0, len(cdf), 0, 50)  # one popular candidate from len(cdf) items
    kernels.retrieve(draws, 0, np.arange(n), session.bundle, tables.bundle, consts)
    return session.candidates[:, 0]


def test_popular_buckets_equal_searchsorted() -> None:
    """The popular draw (through the bucket table) equals ``searchsorted``, at and next to every cdf value and
    bucket edge."""
    rng = np.random.default_rng(3)
    for size in (1, 7, 100, 5000):
        cdf = np.cumsum(rng.random(size) ** 3)
        cdf /= cdf[-1]
        low, exact = popular_buckets(cdf)
        edges = np.arange(len(low)) / len(low)
        u = np.concatenate([rng.random(20_000), cdf[:-1], np.nextafter(cdf[:-1], 0.0), edges,
                            np.nextafter(edges[1:], 0.0), [0.0, 1.0 - 2.0**-53]])
        np.testing.assert_array_equal(_popular_all(u, cdf, low, exact), np.searchsorted(cdf, u, side="right"))
        assert not exact.all() or size == 1  # both branches of the draw are exercised


def _plain_observe(core) -> np.ndarray:
    """The observation from each feature's definition (``observation.FEATURES``), assembled by name in the
    layout's order."""
    st, s, pt, lay = core.state, core.session, core.portraits, core.layout
    cat = core.catalog
    col: dict[str, np.ndarray] = {}  # name -> (n,) context column, or (n, M) candidate column
    for j, name in enumerate(SEGMENTS):
        col[f"segment_{name}"] = pt.segment == j
    for j, name in enumerate(CHANNELS):
        col[f"channel_{name}"] = pt.channel == j
    for q in range(cat.embed_dim):
        col[f"interest_{q}"] = pt.interest[:, q]
    col["log_budget"] = np.log(pt.budget) - LOG_BUDGET_CENTER
    col["price_sensitivity"] = pt.price_sensitivity
    col["step_frac"] = s.step_count.astype(np.float32) / core.config.max_steps
    for name in ("clicks", "carts", "purchases", "no_click_run"):
        x = getattr(s, name)
        col[name] = x / (1.0 + x)
    col["last_clicked"] = s.last_clicked
    for j, name in enumerate(cat.category_names):
        col[f"bought_{name}"] = s.bought[:, j]
    cand = s.candidates
    log_price = np.log(cat.price)
    emb = cat.embedding.astype(np.float64)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    for j, name in enumerate(cat.category_names):
        col[f"cat_{name}"] = cat.category[cand] == j
    col["log_price_z"] = ((log_price - log_price.mean()) / (log_price.std() or 1.0))[cand]
    col["quality"] = cat.quality[cand]
    col["rel_popularity"] = np.log(cat.popularity * cat.num_items)[cand] / 3.0
    for q in range(cat.embed_dim):
        col[f"emb_{q}"] = emb[cand, q]
    col["seen"] = st.repeat_counts(cand) > 0
    col["affinity"] = np.clip(np.einsum("nmd,nd->nm", emb[cand], pt.interest), -1.0, 1.0)
    col["log_price_over_budget"] = log_price[cand] - np.log(pt.budget)[:, None]
    col["category_bought"] = st.category_bought(cand)
    context = np.stack([col[name] for name in lay.portrait_names + lay.session_names], axis=1).astype(np.float32)
    blocks = np.stack([col[name] for name in lay.candidate_names], axis=2).astype(np.float32)
    return np.concatenate([context, blocks.reshape(len(cand), -1)], axis=1)


@pytest.mark.parametrize("num_envs, mode, user_model", [(1, "recommend", "reference"), (37, "recommend", "reference"),
                                                     (5, "slate", "reference"), (3, "recommend", "dnn")])
def test_observation_equals_plain_definition(num_envs: int, mode: str, user_model: str) -> None:
    """Bit for bit, except the affinity (a dot product summed in another order): within 1 float32 ulp."""
    env = EcomVectorEnv(num_envs=num_envs, user_model=user_model, mode=mode,
                        slate_size=1 if mode == "recommend" else 3)
    obs, _ = env.reset(seed=4)
    rng = np.random.default_rng(0)
    lay = env.core.layout
    assert obs.shape[1] == lay.obs_dim
    width = len(lay.candidate_names)
    aff_cols = lay.context_dim + lay.candidate_names.index("affinity") + width * np.arange(env.core.num_candidates)
    other = np.setdiff1d(np.arange(lay.obs_dim), aff_cols)
    for _ in range(60):
        want = _plain_observe(env.core)
        np.testing.assert_array_equal(obs[:, other], want[:, other])
        np.testing.assert_allclose(obs[:, aff_cols], want[:, aff_cols], rtol=0, atol=1.2e-7)
        obs, *_ = env.step(env.action_space.sample() if mode == "slate" else rng.integers(0, 20, size=num_envs))


def _dnn_env(num_envs: int, **kwargs) -> EcomVectorEnv:
    env = EcomVectorEnv(num_envs=num_envs, **kwargs)
    env.reset(seed=2)
    rng = np.random.default_rng(5)
    for _ in range(15):  # sessions with clicks, purchases and history
        env.step(env.action_space.sample() if env.config.mode == "slate" else rng.integers(0, 20, size=num_envs))
    return env


@pytest.mark.parametrize("mode", ["recommend", "slate"])
def test_dnn_kernel_features_equal_tracker_definitions(mode: str) -> None:
    """The env's compiled DNN features equal ``SessionTracker``'s numpy ones (which built the training data)."""
    env = _dnn_env(40, mode=mode, slate_size=1 if mode == "recommend" else 4)
    model = env.core.shopper
    tr: SessionTracker = model.tracker
    items = env.core.candidates[:, :5]
    user, item = model.features(items)
    np.testing.assert_allclose(user, tr.user_features(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(item, tr.item_features(items), rtol=1e-6, atol=1e-7)
    rows = np.array([7, 0, 33])
    user_r, item_r = model.features(items[rows], rows)
    np.testing.assert_array_equal(user_r, user[rows])
    np.testing.assert_array_equal(item_r, item[rows])


def test_dnn_kernel_update_equals_tracker_update() -> None:
    env = _dnn_env(40, mode="slate", slate_size=3)
    model = env.core.shopper
    tr: SessionTracker = model.tracker
    rng = np.random.default_rng(9)
    items = env.core.candidates[:, :3].copy()
    shown = rng.random((40, 3)) < 0.9
    clicked = shown & (rng.random((40, 3)) < 0.4)
    before = (tr.interest.copy(), tr.aggregates.copy())
    tr.update(items, shown, clicked)  # the numpy definition
    want = (tr.interest.copy(), tr.aggregates.copy())
    tr.interest[:], tr.aggregates[:] = before
    model.update(items, shown, clicked, clicked, clicked)  # the kernel
    np.testing.assert_allclose(tr.interest, want[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(tr.aggregates, want[1], rtol=1e-12, atol=1e-14)
    full = (tr.interest.copy(), tr.aggregates.copy())
    tr.interest[:], tr.aggregates[:] = before
    rows = np.array([31, 2, 17])  # some sessions only: the same rows, the others untouched
    model.update(items[rows], shown[rows], clicked[rows], clicked[rows], clicked[rows], rows=rows)
    others = np.setdiff1d(np.arange(40), rows)
    np.testing.assert_array_equal(tr.interest[rows], full[0][rows])
    np.testing.assert_array_equal(tr.aggregates[:, rows], full[1][:, rows])
    np.testing.assert_array_equal(tr.interest[others], before[0][others])
    np.testing.assert_array_equal(tr.aggregates[:, others], before[1][:, others])


@pytest.mark.parametrize("mode, kernel_rows", [("recommend", None), ("slate", None), ("recommend", 0), ("slate", 0)])
def test_fused_dnn_step_equals_general_step(mode: str, kernel_rows: int | None, monkeypatch) -> None:
    """The DNN's fused step equals the kernel-by-kernel step, bit for bit: ``kernels.dnn_step`` (compiled
    forward) and, with ``KERNEL_MAX_ROWS = 0``, ``dnn_pre`` + torch forward + ``dnn_post``."""
    if kernel_rows is not None:
        monkeypatch.setattr("ecomsim.shoppers.behavior.KERNEL_MAX_ROWS", kernel_rows)
    k = 1 if mode == "recommend" else 3
    fused = EcomVectorEnv(num_envs=6, mode=mode, slate_size=k)
    general = EcomVectorEnv(num_envs=6, mode=mode, slate_size=k)
    general.core.shopper.fused_step = None
    obs_f, _ = fused.reset(seed=3)
    obs_g, _ = general.reset(seed=3)
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(150):
        np.testing.assert_array_equal(obs_f, obs_g)
        a = rng.integers(0, 20, size=(6, k) if k > 1 else 6)
        obs_f, r_f, term_f, trunc_f, info_f = fused.step(a)
        obs_g, r_g, term_g, trunc_g, info_g = general.step(a)
        np.testing.assert_array_equal(r_f, r_g)
        np.testing.assert_array_equal(term_f, term_g)
        np.testing.assert_array_equal(trunc_f, trunc_g)
        for key in info_g:
            np.testing.assert_array_equal(info_f[key], info_g[key])
        ended += int(term_f.sum() + trunc_f.sum())
    assert ended > 10  # autoresets were exercised


def _by_session(block, name: str) -> np.ndarray:
    """A field of a state block with its session axis first."""
    field = next(f for f in block.spec.fields if f.name == name)
    return np.moveaxis(getattr(block, name), field.shape.index("num_envs"), 0)


@pytest.mark.parametrize("user_model, kernel_rows", [("dnn", None), ("dnn", 0), ("reference", None)])
def test_skipped_sessions_are_only_observed(user_model: str, kernel_rows: int | None, monkeypatch) -> None:
    """``core.step(skip=...)``: skipped sessions keep their state, latent state and streams, show nothing and get
    zero outcomes; the others step exactly as without ``skip``; every session is observed."""
    if kernel_rows is not None:
        monkeypatch.setattr("ecomsim.shoppers.behavior.KERNEL_MAX_ROWS", kernel_rows)
    envs = [EcomVectorEnv(num_envs=8, mode="slate", slate_size=3, user_model=user_model) for _ in range(2)]
    for env in envs:
        env.reset(seed=5)
    skip = np.zeros(8, dtype=bool)
    skip[[1, 4, 5]] = True
    core, plain = envs[0].core, envs[1].core
    names = ("counters", "revenue", "last_clicked", "bought", "recent", "candidates", "pool")
    latent = ("interest", "patience", "fatigue", "intent") if user_model == "reference" else ()
    before = {name: _by_session(core.session, name).copy() for name in names}
    before_latent = {name: getattr(core.shopper, name).copy() for name in latent}
    counter = core.state.streams.counter.copy()
    slots = np.tile(np.arange(3), (8, 1))
    out = core.step(slots, skip=skip)
    want = plain.step(slots)
    for name in names:
        got = _by_session(core.session, name)
        np.testing.assert_array_equal(got[skip], before[name][skip])
        np.testing.assert_array_equal(got[~skip], _by_session(plain.session, name)[~skip])
    for name in latent:
        np.testing.assert_array_equal(getattr(core.shopper, name)[skip], before_latent[name][skip])
        np.testing.assert_array_equal(getattr(core.shopper, name)[~skip], getattr(plain.shopper, name)[~skip])
    np.testing.assert_array_equal(core.state.streams.counter[skip], counter[skip])
    np.testing.assert_array_equal(core.state.streams.counter[~skip], plain.state.streams.counter[~skip])
    assert (out.items[skip] == -1).all() and not out.shown[skip].any()
    for arr in (out.clicks, out.carts, out.purchases, out.revenue, out.reward, out.left, out.terminated):
        assert not arr[skip].any()
    for field in ("items", "clicked", "purchased", "reward", "terminated", "obs"):
        np.testing.assert_array_equal(getattr(out, field)[~skip], getattr(want, field)[~skip])
    np.testing.assert_array_equal(out.obs, core.observe())  # skipped rows observed as they are


def test_observe_rows_equals_rows_of_observe() -> None:
    env = EcomVectorEnv(num_envs=50, user_model="reference", mode="slate", slate_size=3)
    env.reset(seed=1)
    for _ in range(20):
        env.step(env.action_space.sample())
    full = env.core.observe()
    for rows in (np.array([0]), np.array([3, 7, 49]), np.arange(50)[::-1], np.array([], dtype=np.int64)):
        np.testing.assert_array_equal(env.core.observe(rows), full[rows])
