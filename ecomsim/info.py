"""The ``info`` dict of an env step: the raw outcome of the step and the session totals so far.

Keys: ``items`` (shown item indexes, -1 for empty slots), ``clicked`` / ``carted`` / ``purchased`` (per
slot), ``clicks``, ``carts``, ``purchases``, ``revenue`` (currency units), ``left``, and the totals
:data:`SESSION_KEYS`: ``session_impressions``, ``session_clicks``, ``session_carts``,
``session_purchases``, ``session_revenue``, ``session_length``; with inventory ``unavailable``,
``lost`` (per slot) and ``action_mask``; the shopper model's ``extras`` (an ensemble's
``disagreement``). The vector envs give them batched (``(num_envs, ...)`` arrays,
:func:`step_info`); the single env row 0 (:func:`info_one`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ecomsim.sim.core import SimulationCore, StepOutcome

SESSION_KEYS = (
    "session_impressions",
    "session_clicks",
    "session_carts",
    "session_purchases",
    "session_revenue",
    "session_length",
)


def step_info(core: SimulationCore, out: StepOutcome | None) -> dict[str, np.ndarray]:
    """Batched info dict: raw outcome of the step plus session totals."""
    n, k = core.num_envs, core.slate_size
    if out is None:
        info: dict[str, np.ndarray] = {
            "items": np.full((n, k), -1, dtype=np.int64),
            "clicked": np.zeros((n, k), dtype=bool),
            "carted": np.zeros((n, k), dtype=bool),
            "purchased": np.zeros((n, k), dtype=bool),
            "clicks": np.zeros(n, dtype=np.int64),
            "carts": np.zeros(n, dtype=np.int64),
            "purchases": np.zeros(n, dtype=np.int64),
            "revenue": np.zeros(n),
            "left": np.zeros(n, dtype=bool),
        }
    else:
        info = {
            "items": out.items,
            "clicked": out.clicked,
            "carted": out.carted,
            "purchased": out.purchased,
            "clicks": out.clicks,
            "carts": out.carts,
            "purchases": out.purchases,
            "revenue": out.revenue,
            "left": out.left,
        }
        if out.extras:  # what the shopper model reports besides (an ensemble's disagreement)
            info.update(out.extras)
    s = core.session
    totals = (s.impressions, s.clicks, s.carts, s.purchases, s.revenue, s.step_count)
    info.update((key, arr.copy()) for key, arr in zip(SESSION_KEYS, totals))
    if core.stock is not None:
        info.update(stock_info(core, out))
    return info


def stock_info(core: SimulationCore, out: StepOutcome | None) -> dict[str, np.ndarray]:
    """Inventory only: ``unavailable`` and ``lost`` ``(N, k)`` bool (see ``StepOutcome``) and ``action_mask``."""
    empty = np.zeros((core.num_envs, core.slate_size), dtype=bool)
    return {"unavailable": empty if out is None else out.unavailable, "lost": empty if out is None else out.lost,
            "action_mask": core.action_masks()}


def info_one(core: SimulationCore, out: StepOutcome | None) -> dict[str, Any]:
    """``step_info`` of a one-session core, row 0 (a step's built directly: it runs every step of a single env)."""
    if out is None or core.stock is not None:
        return {key: value[0] for key, value in step_info(core, out).items()}
    # one dict literal, the SESSION_KEYS spelt out: a loop over them is measurably slower on this hot path
    s = core.session
    info = {
        "items": out.items[0], "clicked": out.clicked[0], "carted": out.carted[0], "purchased": out.purchased[0],
        "clicks": out.clicks[0], "carts": out.carts[0], "purchases": out.purchases[0],
        "revenue": out.revenue[0], "left": out.left[0],
        "session_impressions": s.impressions[0], "session_clicks": s.clicks[0],
        "session_carts": s.carts[0], "session_purchases": s.purchases[0],
        "session_revenue": s.revenue[0], "session_length": s.step_count[0],
    }
    if out.extras:  # what the shopper model reports besides (an ensemble's disagreement)
        info.update((key, value[0]) for key, value in out.extras.items())
    return info
