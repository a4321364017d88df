"""The declared state: the table, the kernels' unpacking of it, blocks, catalog swaps and given portraits."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re

import numpy as np
import pytest

import ecomsim
from ecomsim.config import REWARDS
from ecomsim.envs import EcomEnv, EcomVectorEnv
from ecomsim.sim import kernels, state
from ecomsim.sim.state import BUNDLES, CONSTS, SESSION, TRACKER, Block, Portraits

REF = {"user_model": "reference"}


def _unpackings() -> list[tuple[str, str, list[str]]]:
    """``(kernel, bundle, names)`` for every ``a, b, ... = <bundle>`` in ``ecomsim.sim.kernels``."""
    tree = ast.parse(inspect.getsource(kernels))
    found = []
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        params = {a.arg for a in fn.args.args}
        for node in ast.walk(fn):
            if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Tuple)
                    and isinstance(node.value, ast.Name) and node.value.id in params):
                found.append((fn.name, node.value.id, [t.id for t in node.targets[0].elts]))
    return found


def test_every_kernel_unpacks_bundles_in_declared_order() -> None:
    unpacked = [u for u in _unpackings() if u[1] in BUNDLES or u[1] == "consts"]
    assert {b for _, b, _ in unpacked} >= set(BUNDLES) | {"consts"}  # every bundle reaches some kernel
    for kernel, bundle, names in unpacked:
        want = list(CONSTS) if bundle == "consts" else list(BUNDLES[bundle].names)
        assert names == want, f"kernels.{kernel} unpacks {bundle} as {names}, the table declares {want}"


def test_kernel_row_constants_follow_the_table() -> None:
    rows = SESSION.fields[0].rows
    assert rows == ("step_count", "clicks", "carts", "purchases", "impressions", "no_click_run")
    assert [kernels.STEP, kernels.CLICKS, kernels.CARTS, kernels.PURCHASES, kernels.IMPRESSIONS,
            kernels.NO_CLICK_RUN] == [rows.index(r) for r in rows]


def test_docstring_table_lists_every_declared_field() -> None:
    listed = set()
    for line in state.__doc__.splitlines():
        m = re.match(r"^(\w+)\s{2,}([\w, ()]+?)\s{2,}\S", line)
        if m and m.group(1) in BUNDLES:
            listed |= {(m.group(1), name.strip()) for name in m.group(2).split(",")}
    declared = {(b, f.name) for b, spec in BUNDLES.items() for f in spec.fields}
    assert listed == declared
    assert all(name in state.__doc__ for name in CONSTS)


def test_reward_codes_follow_config_rewards() -> None:
    """``consts.reward_kind`` indexes ``config.REWARDS``: each reward is what its name says."""
    for name in REWARDS:
        store = {"inventory": {"initial_fill_days": 60.0}} if name == "profit" else {}  # profit needs the store
        env = EcomVectorEnv(num_envs=64, reward=name, **REF, **store)
        env.reset(seed=0)
        for _ in range(10):
            value = env.core.stock.unit_profit.copy() if name == "profit" else None
            _, reward, *_, info = env.step(np.zeros(64, dtype=np.int64))
            if name == "profit":
                want = np.where(info["purchased"], value[info["items"]], 0.0).sum(axis=1)
            else:
                want = {"purchase": info["purchases"], "revenue": info["revenue"], "click": info["clicks"]}[name]
            np.testing.assert_array_equal(reward, want.astype(np.float64))


def test_blocks_are_written_in_place_never_rebound() -> None:
    block = SESSION.allocate({"num_envs": 3, "num_categories": 2, "history": 4, "num_candidates": 5,
                              "pool_size": 7, "draws": 9})
    assert block.counters.shape == (6, 3) and block.recent.shape == (3, 4) and (block.recent == -1).all()
    block.clicks[1] = 4  # a row name is a view of its stacked field
    assert block.counters[1, 1] == 4 and block.bundle[0] is block.counters
    block.revenue[:], block.candidates[:] = 2.5, 9
    block.restart(np.array([1]))  # back to the declared fill, but what retrieval sets
    assert block.clicks[1] == 0 and block.revenue.tolist() == [2.5, 0.0, 2.5] and (block.candidates == 9).all()
    with pytest.raises(AttributeError, match="written in place"):
        block.revenue = np.ones(3)
    with pytest.raises(ValueError, match=r"session.revenue must be a float64 array of rank 1, got a float32"):
        Block(SESSION, dict(block.arrays(), revenue=np.ones(3, dtype=np.float32)))


def test_an_optional_block_switched_off_keeps_dtypes_and_ranks() -> None:
    on = TRACKER.allocate({"num_envs": 4, "embed_dim": 3, "member_rows": 4})
    off = TRACKER.allocate({"num_envs": 4, "embed_dim": 3, "member_rows": 4}, enabled=False)
    for a, b in zip(on.bundle, off.bundle):
        assert a.dtype == b.dtype and a.ndim == b.ndim
    assert off.session_interest.shape == (0, 0) and off.aggregates.shape == (4, 0)  # literal sizes stay
    assert on.member.shape == (4,) and off.member.shape == (0,)


def test_portraits_take_and_assign() -> None:
    p = Portraits.empty(5, 3)
    p.budget[:] = np.arange(5.0)
    p.interest[:] = np.arange(15.0).reshape(5, 3)
    q = p.take(np.array([4, 1]))
    np.testing.assert_array_equal(q.budget, [4.0, 1.0])
    p.assign(np.array([0, 2]), q)
    np.testing.assert_array_equal(p.budget, [4.0, 1.0, 1.0, 3.0, 4.0])
    np.testing.assert_array_equal(p.interest[0], [12.0, 13.0, 14.0])


def test_reset_with_given_portraits() -> None:
    env = EcomVectorEnv(num_envs=4, **REF)
    env.reset(seed=3)
    core = env.core
    given = core.portraits.take(np.array([2, 2]))
    given.budget[:] = [60.0, 240.0]
    core.reset(np.array([0, 3]), portraits=given)
    for name in state.PORTRAIT.names:
        np.testing.assert_array_equal(getattr(core.portraits, name)[[0, 3]], getattr(given, name))
    lay = core.layout
    budget_col = lay.portrait_names.index("log_budget")
    np.testing.assert_allclose(core.observe()[[0, 3], budget_col], np.log([60.0 / 150, 240.0 / 150]), rtol=1e-6)
    assert (core.step_count[[0, 3]] == 0).all()
    bad = core.portraits.take(np.array([1]))
    bad.budget[:] = 1e9
    with pytest.raises(ValueError, match=r"portraits.budget\[0\] must be in \[[\d.]+, [\d.]+\].*got 1000000000.0"):
        core.reset(np.array([1]), portraits=bad)
    bad = core.portraits.take(np.array([1]))
    bad.segment[:] = 7
    with pytest.raises(ValueError, match=r"portraits.segment\[0\] must be one of \[0, 1, 2, 3\], got 7"):
        core.reset(np.array([1]), portraits=bad)
    with pytest.raises(ValueError, match="one portrait per session, 2, got 1"):
        core.reset(np.array([1, 2]), portraits=bad)


def test_set_catalog_rebuilds_the_tables_and_keeps_the_streams() -> None:
    env = EcomEnv(catalog="reference", **REF)
    env.reset(seed=0)
    core = env.core
    counter = core.state.streams.counter.copy()
    other = ecomsim.make_reference_catalog(num_items=150, seed=9)  # same categories and dim, fewer items
    before = core.state.item_table
    core.set_catalog(other)
    assert core.catalog is other and core.state.catalog is other and core.state.item_table is not before
    assert core.state.item_table.price.shape == (150,) and core.state.retrieval.mark.shape == (151,)
    assert core.session.pool.shape[1] <= 150 and core.shopper.state is core.state
    np.testing.assert_array_equal(core.state.streams.counter, counter)
    obs, _ = env.reset()
    assert (core.candidates < 150).all() and env.observation_space.contains(obs)


def test_set_catalog_refuses_values_outside_the_observation_bounds() -> None:
    env = EcomEnv(catalog="reference", **REF)
    dear = dataclasses.replace(env.core.catalog, price=env.core.catalog.price * 1e6)
    with pytest.raises(ValueError, match=r"set_catalog: the catalog's log_price spans .* outside"):
        env.core.set_catalog(dear)
