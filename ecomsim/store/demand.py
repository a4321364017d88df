"""Where a store's demand comes from: the :class:`DemandSource` interface and :class:`ReplayDemand`.

A demand source makes one day's demand arrive *and sells it* through the store
(``StoreState.sell`` / ``sell_dense``), so a source that runs shopper sessions can
sell purchase by purchase, in session order, and let a shopper who meets an empty
shelf do something else in the same session (buy a substitute, leave). The store
records what was requested, sold and lost; the harness (``ecomsim.store.harness``)
does the rest of the day.

* :class:`ReplayDemand` replays per-item daily demand arrays (for instance recorded
  from real sessions of the env, ``ecomsim.store.sessions``): demand that was
  recorded with unlimited stock, so the replay decides what an empty shelf does
  through a :class:`SubstitutionRule`.
* :class:`~ecomsim.store.traffic.SessionDemand` (``Inventory-v0``'s source) runs each day's
  sessions on the batched core with the store's stock; substitutions then happen inside
  the sessions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ecomsim.errors import check_range
from ecomsim.store.items import ItemGroups, StoreItems
from ecomsim.store.state import StoreState


class DemandSource(ABC):
    """Makes each day's demand arrive at a :class:`StoreState` and sells it."""

    def reset(self, state: StoreState, rng: np.random.Generator) -> None:
        """Called once before a run; ``rng`` is the only randomness the source may use."""
        self.rng = rng

    @abstractmethod
    def run_day(self, day: int, state: StoreState) -> None:
        """Sell day ``day``'s demand through ``state``, which the harness has opened for that day.

        The source may call ``state.sell`` / ``state.sell_dense`` any number of times
        (each serves its requests in the order given) and nothing else of the state:
        the harness opens and closes the day and places the orders. A source driven by
        the session core draws the day's traffic and the sessions' keys from the
        generator it got in :meth:`reset`, sells each step's purchases with
        ``state.sell(items, ones, stores)`` in session-row order, and lets a session
        whose purchase came back unsold react in its next step.
        """


class SubstitutionRule(ABC):
    """What the units that found an empty shelf do in a replay."""

    @abstractmethod
    def apply(self, state: StoreState, lost: np.ndarray, rng: np.random.Generator) -> None:
        """``lost``: ``(num_stores, num_items)`` int64 units not served this day; may sell substitutes."""


class NoSubstitution(SubstitutionRule):
    """Every unit that found no stock is lost."""

    def apply(self, state: StoreState, lost: np.ndarray, rng: np.random.Generator) -> None:
        pass


class GroupSubstitution(SubstitutionRule):
    """A placeholder rule until sessions decide: a share of the lost units buys the group's best seller in stock.

    Each of the ``lost`` units of item ``i`` independently (a binomial draw with
    probability ``share``) asks for the most popular item of ``i``'s group that still
    has stock after the day's first pass (catalog popularity; ties: lower index); the
    requests are sold like any other (so the substitute's demand grows and it may run
    out too). The first item's unit stays lost: the stock-out rate counts it.

    Args:
        groups: the ordering groups (substitutes stay inside a group).
        items: the items (their popularity ranks the substitutes).
        share: probability that a lost unit looks for a substitute, in [0, 1].
    """

    def __init__(self, groups: ItemGroups, items: StoreItems, share: float = 0.5) -> None:
        check_range("share", share, 0.0, 1.0)
        self.groups = groups
        self.share = share
        # each group's items, most popular first (a stable sort: ties keep the lower index)
        self.members = [m[np.argsort(-items.popularity[m], kind="stable")] for m in groups.members]

    def apply(self, state: StoreState, lost: np.ndarray, rng: np.random.Generator) -> None:
        asking = rng.binomial(lost, self.share)  # (S, I) drawn for every entry: a fixed number of draws
        per_group = self.groups.totals(asking)  # (S, G)
        wanted = np.zeros_like(asking)
        rows = np.arange(state.num_stores)
        for g, members in enumerate(self.members):
            has = state.stock[:, members] > 0  # (S, n_g)
            ok = has.any(axis=1) & (per_group[:, g] > 0)
            wanted[rows[ok], members[np.argmax(has[ok], axis=1)]] += per_group[ok, g]
        if wanted.any():
            state.sell_dense(wanted)


class ReplayDemand(DemandSource):
    """Replays recorded per-item daily demand; store ``s`` replays trajectory ``trajectory_of[s]``.

    Args:
        demand: ``(num_trajectories, num_days, num_items)`` int units >= 0.
        trajectory_of: ``(num_stores,)`` int index of each store's trajectory (``None``:
            store ``s`` replays trajectory ``s``). Stores sharing a trajectory see the
            same demand: common random numbers for comparing policies.
        substitution: what lost units do (default :class:`NoSubstitution`).
    """

    def __init__(self, demand: np.ndarray, trajectory_of: np.ndarray | None = None,
                 substitution: SubstitutionRule | None = None) -> None:
        d = np.asarray(demand)
        if d.ndim != 3 or not np.issubdtype(d.dtype, np.integer) or (d < 0).any():
            raise ValueError(
                f"demand must be (num_trajectories, num_days, num_items) integer units >= 0, got {d.dtype} {d.shape}"
            )
        self.demand = d.astype(np.int64, copy=False)
        self.trajectory_of = None if trajectory_of is None else np.asarray(trajectory_of, dtype=np.int64)
        if self.trajectory_of is not None and (
            self.trajectory_of.ndim != 1 or (self.trajectory_of < 0).any() or (self.trajectory_of >= d.shape[0]).any()
        ):
            raise ValueError(f"trajectory_of must be a 1-d array of indexes in [0, {d.shape[0] - 1}]")
        self.substitution = substitution or NoSubstitution()

    @property
    def num_days(self) -> int:
        return int(self.demand.shape[1])

    def reset(self, state: StoreState, rng: np.random.Generator) -> None:
        super().reset(state, rng)
        if self.demand.shape[2] != state.num_items:
            raise ValueError(f"demand has {self.demand.shape[2]} items, the store {state.num_items}")
        rows = np.arange(state.num_stores) if self.trajectory_of is None else self.trajectory_of
        if rows.shape != (state.num_stores,) or rows.max() >= self.demand.shape[0]:
            raise ValueError(
                f"need one trajectory per store: {state.num_stores} stores, trajectory_of {self.trajectory_of}, "
                f"{self.demand.shape[0]} trajectories"
            )
        self.rows = rows

    def run_day(self, day: int, state: StoreState) -> None:
        if not 0 <= day < self.num_days:
            raise ValueError(f"day must be in [0, {self.num_days - 1}] (the recorded days), got {day}")
        wanted = self.demand[self.rows, day]
        sold = state.sell_dense(wanted)
        self.substitution.apply(state, wanted - sold, self.rng)
