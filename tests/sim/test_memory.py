"""The memory estimate: computed from the declared state, and configurations that cannot fit refused before allocating.

The refusals run in a subprocess under an address-space limit (``ulimit -v`` 6 GiB), so
a wrong estimate (allocating until numpy or torch fails) cannot exhaust the machine; the
estimate respects that limit (``available_bytes``: ``MemAvailable``, cgroup and ``RLIMIT_AS``).
How the estimate compares with measured memory: ``python3 -m ecomsim.sim.memory``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import ecomsim
from ecomsim.assembly import VECTOR_VIEW
from ecomsim.envs import EcomEnv, EcomVectorEnv
from ecomsim.sim import memory
from ecomsim.sim.observation import feature_counts
from ecomsim.sim.state import BUNDLES, sizes

ROOT = Path(__file__).resolve().parents[2]
REF = {"user_model": "reference"}


def limited(code: str, gib: int = 6, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter under an address-space limit of ``gib`` GiB."""
    prelude = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({gib} << 30, {gib} << 30))\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def raises_in_subprocess(code: str, kind: str, match: str, **kw) -> str:
    proc = limited(f"""
        import gymnasium as gym, ecomsim
        try:
            {code}
        except {kind} as exc:
            print("RAISED", exc)
        """, **kw)
    assert "RAISED" in proc.stdout and re.search(match, proc.stdout), (proc.stdout[-1500:], proc.stderr[-1500:])
    return proc.stdout


def test_vector_env_too_large_is_refused_with_an_estimate():
    out = raises_in_subprocess("gym.make_vec('ecomsim/Recommend-v0', num_envs=10**9, user_model='reference')",
                               "ValueError", r"num_envs=1,?000,?000,?000 needs about [\d.]+ [GT]iB")
    assert re.search(r"of memory is available; lower num_envs \(about [\d,]+ would fit\)", out), out


@pytest.mark.slow
def test_gan_catalog_too_large_is_refused_with_an_estimate():
    out = raises_in_subprocess("gym.make('ecomsim/Recommend-v0', catalog='gan', num_items=10_000_000).reset(seed=0)",
                               "ValueError", r"num_items=10,?000,?000 .*needs about [\d.]+ [GM]iB")
    assert "with catalog='gan'" in out and "lower num_items" in out, out


def test_block_bytes_are_the_allocated_arrays():
    """The estimate's held state is the declared table: ``BlockSpec.nbytes`` equals what a core allocated."""
    for kwargs in ({}, dict(REF, mode="slate", slate_size=3, num_candidates=12)):
        core = EcomVectorEnv(num_envs=5, **kwargs).core
        st, cat = core.state, core.catalog
        table = sizes(5, core.num_candidates, core.slate_size, cat.num_items, cat.num_categories, cat.embed_dim,
                      st.session.pool.shape[1], st.item_table.features.shape[1])
        table.update(popular_pool=len(st.retrieval.popular_items), buckets=len(st.retrieval.popular_low),
                     anchors=len(st.retrieval.anchors), marks=cat.num_items + 1,
                     member_rows=len(core.shopper.tracker.member) if core.shopper.blocks else 0,
                     stocked_envs=0, stocked_slots=0, stocked_items=0, stock_params=0)
        blocks = {"session": st.session, "portrait": st.portraits, "rng": st.streams.rng, "item_table": st.item_table,
                  "retrieval": st.retrieval}
        if core.shopper.blocks:
            blocks["tracker"] = core.shopper.tracker.block
        for name, block in blocks.items():
            assert BUNDLES[name].nbytes(table) == sum(a.nbytes for a in block.bundle), name


def test_feature_counts_are_the_layout():
    for kwargs in ({}, dict(REF, num_candidates=7)):
        lay = EcomEnv(**kwargs).core.layout
        cat = ecomsim.load_catalog("default")
        counts = feature_counts(cat.num_categories, cat.embed_dim)
        assert counts == {part: len(names) for part, names in lay.names.items()}


def test_estimate_grows_with_what_it_counts():
    env = EcomVectorEnv(num_envs=4, **REF)
    core, cat = env.core, env.core.catalog
    dims = memory.CatalogDims(cat.num_items, cat.num_categories, cat.embed_dim)
    per_session = memory.session_bytes(core.config, dims, core.shopper, VECTOR_VIEW)
    obs = 4 * core.layout.obs_dim
    one = sizes(1, core.num_candidates, 1, cat.num_items, cat.num_categories, cat.embed_dim,
                core.session.pool.shape[1], len(core.layout.item_names))
    state = sum(BUNDLES[b].nbytes(one) for b in ("session", "portrait", "rng"))
    # at least the held state, the view's two bounds and two handed-out observations
    assert per_session >= state + 4 * obs
    assert per_session - memory.session_bytes(core.config, dims, core.shopper) == 2 * obs
    big = memory.env_estimate(core.config, 1000, dims, core.shopper, VECTOR_VIEW)
    assert big.total > memory.env_estimate(core.config, 10, dims, core.shopper, VECTOR_VIEW).total
    gan = memory.item_bytes(core.config, dims, core.shopper, gan=True)
    assert gan > memory.item_bytes(core.config, dims, core.shopper, gan=False) > 8 * 256  # every anchor's score


def test_available_bytes_respects_an_address_space_limit():
    proc = limited("from ecomsim.sim.memory import available_bytes; print(available_bytes())", gib=3)
    assert 0 < int(proc.stdout) <= 3 << 30, proc.stderr[-1000:]


def test_numpy_counts_reach_the_estimate_as_ints():
    env = EcomVectorEnv(num_envs=np.int32(3), **REF)
    assert type(env.num_envs) is int and env.core.num_envs == 3
