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

    # candidates: (n, m, nf + NUM_DYNAMIC) view of the rest of each row
    # (np.take gathers rows several times faster than fancy indexing)
    cand = sel(core.candidates)
    block = out[:, j:].reshape(n, m, nf + NUM_DYNAMIC)
    block[:, :, :nf] = np.take(core.item_features, cand, axis=0)
    block[:, :, nf] = _seen(cand, sel(core.recent))
    # clip guards float rounding only: both vectors are unit norm
    aff = np.einsum("nmd,nd->nm", np.take(core._emb64, cand, axis=0), interest)
    block[:, :, nf + 1] = np.clip(aff, -1.0, 1.0, out=aff)
    block[:, :, nf + 2] = np.take(core._log_price, cand) - log_budget[:, None]
    block[:, :, nf + 3] = bought[r[:, None], np.take(core.catalog.category, cand)]
    return out


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
