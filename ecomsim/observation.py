"""Building the flat observation of every session, straight into one preallocated row block.

The layout (names in ``SimulationCore.*_feature_names``) is: portrait (segment and
channel one-hot, interest, log budget, price sensitivity), session state, then
``num_candidates`` blocks of candidate features (static item features, then
``seen``, ``affinity``, ``log_price_over_budget``, ``category_bought``).

Why a module of its own: this is the hottest code of a step (about 490 floats per
session). It writes each feature group once into its slice of a fresh
``(num_envs, obs_dim)`` float32 array instead of building and concatenating
temporaries, and computes every value with the same numpy operations, in the same
precision, as the plain definition, so the numbers are bit for bit the same.
A fresh array per call (not a reused buffer) because callers keep observations
(replay buffers, trajectories) without copying them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ecomsim.config import CHANNELS
from ecomsim.population import SEGMENTS

if TYPE_CHECKING:
    from ecomsim.core import SimulationCore

LOG_BUDGET_CENTER = float(np.log(150.0))  # budget feature: log(budget / 150)
NUM_DYNAMIC = 4  # seen, affinity, log_price_over_budget, category_bought


def observe(core: "SimulationCore", rows: np.ndarray | None = None) -> np.ndarray:
    """``(n, obs_dim)`` float32 observations of the sessions ``rows`` of ``core`` (all when None).

    A row's observation depends on that session only, so ``observe(core, rows)`` equals
    ``observe(core)[rows]`` (the SB3 VecEnv re-observes only the sessions it just reset).
    """
    sel = (lambda a: a) if rows is None else (lambda a: a[rows])  # noqa: E731
    m = core.num_candidates
    pt = core.portraits
    segment, channel, interest, budget = sel(pt.segment), sel(pt.channel), sel(pt.interest), sel(pt.budget)
    bought = sel(core.bought)
    n = len(segment)
    nseg, nch = len(SEGMENTS), len(CHANNELS)
    d = interest.shape[1]
    nf = core.item_features.shape[1]
    out = np.empty((n, core.obs_dim), dtype=np.float32)
    r = core._rows if rows is None else np.arange(n)

    # portrait
    out[:, : nseg + nch] = 0.0
    out[r, segment] = 1.0
    out[r, nseg + channel] = 1.0
    j = nseg + nch
    out[:, j : j + d] = interest
    log_budget = np.log(budget)
    out[:, j + d] = log_budget - LOG_BUDGET_CENTER
    out[:, j + d + 1] = sel(pt.price_sensitivity)
    # session: x / (1 + x) squashing in float64, the step fraction in float32 (as defined)
    j += d + 2
    out[:, j] = sel(core.step_count).astype(np.float32) / core.config.max_steps
    for i, arr in enumerate((core.clicks, core.carts, core.purchases, core.no_click_run), start=1):
        arr = sel(arr)
        out[:, j + i] = arr / (1.0 + arr)
    out[:, j + 5] = sel(core.last_clicked)
    nc = bought.shape[1]
    out[:, j + 6 : j + 6 + nc] = bought
    j += 6 + nc

    # candidates: the rest of each row, (n, m, nf + NUM_DYNAMIC). Gathered (np.take: several times faster
    # than fancy indexing) into a contiguous block from a table with room for the dynamic features, then
    # copied into the rows whole (copying 19-float pieces into a strided view is slower)
    cand = sel(core.candidates)
    table = _item_table(core)
    shape = (n, m, table.shape[1])
    block = np.empty(shape, dtype=np.float32) if rows is not None else _scratch(core, shape, np.float32)
    np.take(table, cand, axis=0, out=block, mode="clip")  # candidates are valid items: clip changes none
    recent = sel(core.recent)
    if n > 64 and core.catalog.num_items < 2**15:  # ids (and the -1 of empty history) fit int16: faster compares
        cand16, recent = cand.astype(np.int16), recent.astype(np.int16)
        block[:, :, nf] = _seen(cand16, recent)
    else:
        block[:, :, nf] = _seen(cand, recent)
    # clip guards float rounding only: both vectors are unit norm
    emb = np.empty((n, m, d)) if rows is not None else _scratch(core, (n, m, d), np.float64)
    np.take(core._emb64, cand, axis=0, out=emb, mode="clip")
    aff = np.einsum("nmd,nd->nm", emb, interest)
    block[:, :, nf + 1] = np.clip(aff, -1.0, 1.0, out=aff)
    block[:, :, nf + 2] = np.take(core._log_price, cand) - log_budget[:, None]
    block[:, :, nf + 3] = np.take(bought.reshape(-1), np.take(core.catalog.category, cand) + (r * nc)[:, None])
    out[:, j:] = block.reshape(n, m * table.shape[1])
    return out


def _scratch(core: "SimulationCore", shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """A work array of ``shape`` kept on the core, one per dtype (no multi-megabyte allocation per step)."""
    bufs = core.__dict__.setdefault("_obs_scratch", {})
    buf = bufs.get(np.dtype(dtype))
    if buf is None or buf.shape != shape:
        buf = bufs[np.dtype(dtype)] = np.empty(shape, dtype=dtype)
    return buf


def _item_table(core: "SimulationCore") -> np.ndarray:
    """``(num_items, nf + NUM_DYNAMIC)`` float32: the static item features, then zeros (cached on the core)."""
    cached = core.__dict__.get("_obs_item_table")
    if cached is not None and cached[0] is core.item_features:
        return cached[1]
    static = core.item_features
    table = np.zeros((static.shape[0], static.shape[1] + NUM_DYNAMIC), dtype=np.float32)
    table[:, : static.shape[1]] = static
    core._obs_item_table = (static, table)
    return table


def _seen(cand: np.ndarray, recent: np.ndarray) -> np.ndarray:
    """``(n, m)`` True where a candidate is among the session's recently shown items ``(n, h)``.

    Large batches: one ``(n, m)`` comparison per history column, no ``(n, m, h)``
    temporary; small ones: a single broadcast comparison (fewer calls).
    """
    if cand.shape[0] <= 64:
        return (cand[:, :, None] == recent[:, None, :]).any(axis=2)
    seen = cand == recent[:, :1]
    for j in range(1, recent.shape[1]):
        seen |= cand == recent[:, j : j + 1]
    return seen
