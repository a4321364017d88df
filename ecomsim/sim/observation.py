"""The flat observation of every session, written by one compiled pass into a fresh array.

The layout (names in ``SimulationCore.*_feature_names``) is: portrait (segment and
channel one-hot, interest, log budget, price sensitivity), session state, then
``num_candidates`` blocks of candidate features (static item features, then
``seen``, ``affinity``, ``log_price_over_budget``, ``category_bought``).

The values are computed by ``ecomsim.sim.kernels.observe`` row by row (float64, then
stored as float32) from their definitions (``tests/sim/test_kernels.py`` holds the
plain numpy definition and checks the kernel against it). A fresh array per call (not
a reused buffer) because callers keep observations (replay buffers, trajectories)
without copying them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ecomsim.sim import kernels
from ecomsim.config import CHANNELS
from ecomsim.shoppers.population import SEGMENTS

if TYPE_CHECKING:
    from ecomsim.sim.core import SimulationCore

LOG_BUDGET_CENTER = kernels.LOG_BUDGET_CENTER  # budget feature: log(budget / 150)


def observe(core: "SimulationCore", rows: np.ndarray | None = None) -> np.ndarray:
    """``(n, obs_dim)`` float32 observations of the sessions ``rows`` of ``core`` (all when None).

    A row's observation depends on that session only, so ``observe(core, rows)`` equals
    ``observe(core)[rows]`` (the SB3 VecEnv re-observes only the sessions it just reset).
    """
    rows = core._rows if rows is None else np.asarray(rows, dtype=np.int64)
    pt = core.portraits
    out = np.empty((len(rows), core.obs_dim), dtype=np.float32)
    kernels.observe(rows, pt.segment, pt.channel, pt.interest, pt.budget, pt.price_sensitivity, core._ints,
                    core.last_clicked, core.bought, core.candidates, core.recent, core.item_features, core._emb64,
                    core._log_price, core._category, len(SEGMENTS), len(CHANNELS), core.config.max_steps,
                    LOG_BUDGET_CENTER, core._mark, out)
    return out
