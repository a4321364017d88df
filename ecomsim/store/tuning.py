"""Tuning (s, S) per group on training demand: a batched coordinate search over a grid.

The levels are set in days of each group's mean daily demand ``mu_g`` (measured on
the training demand), so one grid fits every group whatever its size:
``s_g = round(reorder_days * mu_g)`` and ``S_g = s_g + max(1, round(gap_days * mu_g))``.

**Search.** Start every group at ``start``. A sweep tries, for every group ``g`` and
every grid point ``j``, the current setting with group ``g`` moved to ``j``: the
``G * J`` trials (the current setting among them) are one batch of stores, run on the same
training trajectories (common random numbers: differences between trials are the
settings', not the demand's). Each group takes its best trial (ties: keep the
current point). The moves are made together; when groups interact (substitution
across groups) together can be worse than apart, so the combined setting is
evaluated and, if it does not beat the current one, only the single best move is
kept. Sweeps repeat until nothing moves or ``sweeps`` is reached. Tuning seeds must
be kept apart from the seeds a tuned policy is scored on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ecomsim.errors import check_range
from ecomsim.store.demand import ReplayDemand, SubstitutionRule
from ecomsim.store.forecast import DemandForecaster
from ecomsim.store.harness import StoreSimulation
from ecomsim.store.policies import SsPolicy
from ecomsim.store.state import StoreState

# grid of (s, S) in days of mean demand: reorder points from none to two weeks (several
# lead times of the default 3 days, for sparse groups whose demand is lumpy), gaps from
# "order every day" to "order every six weeks" (small groups amortise the fixed cost)
REORDER_DAYS = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 11.0, 14.0)
GAP_DAYS = (1.0, 2.0, 4.0, 7.0, 10.0, 14.0, 21.0, 28.0, 42.0)


@dataclass(frozen=True)
class SsGrid:
    """Candidate ``(reorder_days, gap_days)`` pairs: the product of the two tuples."""

    reorder_days: tuple[float, ...] = REORDER_DAYS
    gap_days: tuple[float, ...] = GAP_DAYS
    points: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("reorder_days", "gap_days"):
            values = getattr(self, name)
            if not values or any(not np.isfinite(v) or v < 0 for v in values):
                raise ValueError(f"{name} must be a non-empty tuple of finite numbers >= 0, got {values!r}")
        pts = np.array([(r, g) for r in self.reorder_days for g in self.gap_days], dtype=np.float64)
        object.__setattr__(self, "points", pts)  # (J, 2)

    def index(self, reorder_days: float, gap_days: float) -> int:
        """Grid index of a point (it must be on the grid)."""
        hit = np.flatnonzero((self.points[:, 0] == reorder_days) & (self.points[:, 1] == gap_days))
        if not hit.size:
            raise ValueError(f"start ({reorder_days}, {gap_days}) is not on the grid {self.reorder_days} x {self.gap_days}")
        return int(hit[0])


def ss_levels(mean_demand: np.ndarray, reorder_days: np.ndarray, gap_days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(s, S)`` int64 units from days of mean demand (rule in the module docstring); all arrays broadcast."""
    s = np.round(reorder_days * mean_demand).astype(np.int64)
    return s, s + np.maximum(1, np.round(gap_days * mean_demand)).astype(np.int64)


@dataclass
class SsTuning:
    """Result of :func:`tune_ss`.

    Attributes:
        reorder_days, gap_days: ``(num_groups,)`` float64 the chosen grid point per group.
        reorder_point, order_up_to: ``(num_groups,)`` int64 the chosen ``s`` and ``S``, units.
        profit: mean training profit per store-day of the chosen setting, per sweep (start first).
        evaluations: store-runs simulated.
    """

    reorder_days: np.ndarray
    gap_days: np.ndarray
    reorder_point: np.ndarray
    order_up_to: np.ndarray
    profit: list[float]
    evaluations: int

    def policy(self) -> SsPolicy:
        return SsPolicy(self.reorder_point, self.order_up_to)


def tune_ss(evaluate: Callable[[np.ndarray, np.ndarray], np.ndarray], mean_demand: np.ndarray,
            grid: SsGrid | None = None, start: tuple[float, float] = (3.0, 7.0), sweeps: int = 3) -> SsTuning:
    """Coordinate search for (s, S) per group (module docstring).

    Args:
        evaluate: ``evaluate(s, S)`` with ``(B, num_groups)`` int64 settings returns ``(B,)``
            float64 mean profit per store-day of each setting on the training demand
            (:func:`replay_evaluator` builds one).
        mean_demand: ``(num_groups,)`` float64 mean units demanded per day, training data.
        grid: the candidate points (default :class:`SsGrid`).
        start: the starting ``(reorder_days, gap_days)``, on the grid; the default is a
            buyer's rule of thumb: reorder at the default lead time's demand (3 days),
            order a week's demand on top (the "untuned" (s, S) of the study).
        sweeps: most sweeps, >= 1.
    """
    grid = grid or SsGrid()
    check_range("sweeps", sweeps, 1, 1000, integer=True)
    mu = np.asarray(mean_demand, dtype=np.float64)
    num_groups = mu.shape[0]
    pts = grid.points
    current = np.full(num_groups, grid.index(*start), dtype=np.int64)  # grid index per group

    def run(choices: np.ndarray) -> np.ndarray:  # (B, G) grid indexes -> (B,) profit
        s, big = ss_levels(mu, pts[choices, 0], pts[choices, 1])
        return np.asarray(evaluate(s, big), dtype=np.float64)

    best = float(run(current[None])[0])
    history, evaluations = [best], 1
    num_points = pts.shape[0]
    for _ in range(sweeps):
        trials = np.repeat(current[None], num_groups * num_points, axis=0)  # trial (g, j) moves group g to j
        trials[np.arange(num_groups * num_points), np.repeat(np.arange(num_groups), num_points)] = np.tile(
            np.arange(num_points), num_groups)
        profit = run(trials).reshape(num_groups, num_points)
        evaluations += trials.shape[0]
        gain = profit - profit[np.arange(num_groups), current][:, None]  # vs the same batch's current point
        move = np.where(gain.max(axis=1) > 0, gain.argmax(axis=1), current)
        if np.array_equal(move, current):
            break
        combined = float(run(move[None])[0])
        evaluations += 1
        if combined > best:
            current, best = move, combined
        else:  # interacting groups: keep only the single best move
            g = int(np.argmax(gain.max(axis=1)))
            current = current.copy()
            current[g] = move[g]
            best = float(profit[g, move[g]])
        history.append(best)
    s, big = ss_levels(mu, pts[current, 0], pts[current, 1])
    return SsTuning(reorder_days=pts[current, 0], gap_days=pts[current, 1], reorder_point=s, order_up_to=big,
                    profit=history, evaluations=evaluations)


def replay_evaluator(state_factory: Callable[[int], StoreState], demand: np.ndarray, initial_rate: np.ndarray,
                     forecaster: DemandForecaster, seed: int, substitution: SubstitutionRule | None = None,
                     max_stores: int = 512) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """An ``evaluate`` for :func:`tune_ss` that replays ``demand`` for every setting.

    Each setting runs on every training trajectory (one store per setting and
    trajectory, at most ``max_stores`` stores per batch) over all of its days; its
    score is the mean profit per store-day over the trajectories.

    Args:
        state_factory: builds a :class:`StoreState` of ``n`` stores.
        demand: ``(num_trajectories, num_days, num_items)`` int training demand.
        initial_rate: ``(num_items,)`` expected units per day for the initial fill.
        forecaster: splits group orders over items (its item weights).
        seed: seeds the replay (substitution draws).
    """
    demand = np.asarray(demand)
    num_traj, num_days = demand.shape[:2]
    check_range("max_stores", max_stores, num_traj, 10**7, integer=True)

    def evaluate(s: np.ndarray, big: np.ndarray) -> np.ndarray:
        num = s.shape[0]
        out = np.empty(num)
        per_batch = max(1, max_stores // num_traj)
        for lo in range(0, num, per_batch):
            hi = min(num, lo + per_batch)
            state = state_factory((hi - lo) * num_traj)
            policy = SsPolicy(np.repeat(s[lo:hi], num_traj, axis=0), np.repeat(big[lo:hi], num_traj, axis=0))
            replay = ReplayDemand(demand, np.tile(np.arange(num_traj), hi - lo), substitution)
            history = StoreSimulation(state, replay, policy, forecaster).run(num_days, initial_rate, seed)
            out[lo:hi] = history.daily("profit").mean(axis=1).reshape(hi - lo, num_traj).mean(axis=1)
        return out

    return evaluate
