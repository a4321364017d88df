"""Shopper demand from real sessions of today's env: per-item daily purchases, and purchase rates.

:func:`record_session_demand` runs ``sum(sessions_per_day)`` sessions of an
:class:`~ecomsim.envs.EcomVectorEnv` under a recommendation policy and counts what
each day's shoppers bought: demand as the shopper model makes it, with unlimited
stock (a replay decides what an empty shelf does, see ``ecomsim.store.demand``).

Sessions are numbered in the order they *start* (the env's first ``num_envs``
sessions by row, then each restart as it happens, lower rows first) and session
``j`` belongs to day ``d`` when ``cum[d-1] <= j < cum[d]`` (``cum`` the cumulative
sessions per day). Numbering by start rather than by end matters: the first
sessions to end are the short ones, which buy less, so numbering by end would give
the first day too little demand.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ecomsim.store.config import TrafficPlan


def record_session_demand(env, policy: Callable[[np.ndarray], np.ndarray], sessions_per_day: np.ndarray,
                          seed: int) -> np.ndarray:
    """Per-item units bought on each day by that day's sessions.

    Args:
        env: an :class:`~ecomsim.envs.EcomVectorEnv` (any shopper model; ``env.core``
            gives the catalog size). It is reset with ``seed``: sub-env ``i`` uses
            ``seed + i``, so runs meant to be independent need seeds ``num_envs`` apart.
        policy: maps the observation batch to the env's actions (e.g. the ``act`` of a
            baseline from ``agents.baselines`` bound to ``env.core``).
        sessions_per_day: ``(num_days,)`` int sessions of each day, >= 0.
        seed: the env's reset seed.

    Returns:
        ``(num_days, num_items)`` int64 units bought.
    """
    traffic = np.asarray(sessions_per_day)
    if traffic.ndim != 1 or not np.issubdtype(traffic.dtype, np.integer) or (traffic < 0).any():
        raise ValueError(f"sessions_per_day must be a 1-d array of integer sessions >= 0, got {traffic.dtype} {traffic.shape}")
    num_items = env.core.catalog.num_items
    total = int(traffic.sum())
    n = env.num_envs
    obs, _ = env.reset(seed=seed)
    session_of = np.arange(n, dtype=np.int64)  # the session each row is running
    next_session = n
    finished = 0  # sessions numbered < total that have ended
    bought_session, bought_item = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    while finished < total:
        obs, _, terminated, truncated, info = env.step(policy(obs))
        rows, slots = np.nonzero(info["purchased"])
        keep = session_of[rows] < total
        bought_session.append(session_of[rows[keep]])
        bought_item.append(info["items"][rows[keep], slots[keep]])
        ended = np.flatnonzero(terminated | truncated)
        finished += int((session_of[ended] < total).sum())
        # NEXT_STEP autoreset: these rows start their next session at the coming step
        session_of[ended] = next_session + np.arange(ended.size)
        next_session += ended.size
    day = np.searchsorted(np.cumsum(traffic), np.concatenate(bought_session), side="right")
    demand = np.zeros((traffic.size, num_items), dtype=np.int64)
    np.add.at(demand, (day, np.concatenate(bought_item)), 1)
    return demand


def record_trajectories(env, policy: Callable[[np.ndarray], np.ndarray], traffic: TrafficPlan, num_days: int,
                        seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Independent demand trajectories, one per seed, each over days ``0 .. num_days - 1``.

    Trajectory seed ``r`` (>= 0) draws its daily sessions from
    ``TrafficPlan.sample(days, np.random.default_rng(r))`` and resets the env with
    ``r * num_envs`` (disjoint sub-env seeds for distinct ``r``).

    Returns:
        ``demand`` ``(len(seeds), num_days, num_items)`` int64 units and
        ``sessions`` ``(len(seeds), num_days)`` int64.
    """
    if any(isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 0 for r in seeds):
        raise ValueError(f"seeds must be integers >= 0, got {list(seeds)}")
    days = np.arange(num_days)
    sessions = np.stack([traffic.sample(days, np.random.default_rng(int(r))) for r in seeds])
    demand = np.stack([record_session_demand(env, policy, sessions[j], int(r) * env.num_envs) for j, r in enumerate(seeds)])
    return demand, sessions


def purchase_rates(demand: np.ndarray, sessions: np.ndarray) -> np.ndarray:
    """``(num_items,)`` float64 units of each item bought per session, pooled over all days given.

    Args:
        demand: ``(..., num_days, num_items)`` int units.
        sessions: ``(..., num_days)`` int sessions of the same days.
    """
    d = np.asarray(demand)
    s = np.asarray(sessions)
    if d.shape[:-1] != s.shape:
        raise ValueError(f"sessions must have shape {d.shape[:-1]} (demand's leading axes), got {s.shape}")
    total = int(s.sum())
    if total <= 0:
        raise ValueError("purchase_rates needs at least one session")
    return d.reshape(-1, d.shape[-1]).sum(axis=0) / total
