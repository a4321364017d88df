"""A store-day of shoppers: the day's sessions run on a session core that sells from the store's stock.

:class:`SessionDemand` is the :class:`~ecomsim.store.demand.DemandSource` of
``Inventory-v0``: demand is what the day's shoppers buy, substitutions included, because
the sessions meet the store's real shelves (``ecomsim.sim.stock``): a shopper who finds
an item out of stock may click on, buy another item later in the session, or leave.

**A day.** ``n ~ Poisson(TrafficPlan.expected(d))`` sessions (weekday pattern, promotion
days). The core's ``num_envs`` rows run them side by side: the first ``min(n, rows)``
start at once, and a row whose session ends starts the next of the day at once, until
``n`` have started; then rows go idle (skipped: no draws) as their sessions end. Every
session's stream key is drawn from the source's generator, so a seeded day is
reproducible. The recommender (:data:`RECOMMENDERS`) shows one candidate per step.

**What the shoppers are likely to buy** (the behaviour forecast's input): before each
step the shopper model's :meth:`~ecomsim.shoppers.base.ShopperModel.reaction` is asked
about the item the recommender is about to show to the active sessions of a fixed subset
of rows, every ``ceil(rows / probe_rows)``-th row (a fixed share of the rows, not the first
``probe_rows`` active ones: as the day's last, longest sessions drain, those would be
over-sampled, and late steps of long sessions buy less); ``P(click) P(cart|click) P(purchase|cart)`` with the low-stock lift
(``ecomsim.sim.stock.demand_probability``: the demand the item meets, a sale or, on an
empty shelf, a lost sale) is summed per item. Per day:
``rate_i = (sum of those probabilities for i / probed session-steps) * (session-steps / sessions)``,
expected units of item ``i`` per session. These are the model's probabilities, not the
sampled outcomes, so they carry no purchase-draw noise.

Recommenders (one candidate per step, all batched over the core's rows):

* ``popularity``: the most popular candidate (catalog popularity), stock or not;
* ``stock_aware``: the most popular candidate in stock (any candidate when none is);
* ``greedy``: the highest purchase probability under the shopper model with the stock
  rules (``ecomsim.sim.stock.stocked_reaction``: zero on an empty shelf): one more model
  call per step over every candidate, about ``num_candidates`` times a step's forward.
"""

from __future__ import annotations

import numpy as np

from ecomsim.sim.core import SimulationCore
from ecomsim.sim.stock import demand_probability, stocked_reaction
from ecomsim.sim.streams import key_from_generator
from ecomsim.store.config import TrafficPlan
from ecomsim.store.demand import DemandSource
from ecomsim.store.shop import CoreStock
from ecomsim.store.state import StoreState

RECOMMENDERS = ("popularity", "stock_aware", "greedy")


def recommend(name: str, core: SimulationCore) -> np.ndarray:
    """``(num_envs, 1)`` int64 candidate index per row under recommender ``name`` (module docstring)."""
    cand = core.candidates
    if name == "greedy":
        r = stocked_reaction(core.candidate_reaction(), cand, core.stock.stock, core.stock.params)
        score = r.purchase_total
    else:
        score = core.catalog.popularity[cand]
        if name == "stock_aware":
            score = np.where(core.stock.stock[cand] > 0, score + 1.0, score)  # popularity < 1: in stock first
    return np.argmax(score, axis=1)[:, None]


class SessionDemand(DemandSource):
    """Each day's sessions on ``core`` (module docstring); ``core.stock`` must be ``keeper``.

    Args:
        core: a core whose stock keeper is ``keeper`` (``num_envs`` rows run the day).
        keeper: the store the core sells from (its ``state`` is the harness's).
        traffic: the traffic plan (sessions per day).
        recommender: one of :data:`RECOMMENDERS`.
        probe_rows: rows (of ``num_envs``) whose sessions' purchase probability is recorded, >= 0.

    Attributes:
        sessions: sessions of the last day run; ``session_steps``: their steps.
        expected_rate: ``(num_items,)`` float64 expected units per session of the last day
            (``nan`` before a day with a probed step).
    """

    def __init__(self, core: SimulationCore, keeper: CoreStock, traffic: TrafficPlan, recommender: str = "stock_aware",
                 probe_rows: int = 16) -> None:
        if core.stock is not keeper:
            raise ValueError("core must sell from keeper (SimulationCore(..., stock=keeper))")
        if core.slate_size != 1:
            raise ValueError(f"the day's sessions show one item per step (mode='recommend'), got slate_size={core.slate_size}")
        if recommender not in RECOMMENDERS:
            raise ValueError(f"recommender must be one of {list(RECOMMENDERS)}, got {recommender!r}")
        self.core, self.keeper, self.traffic = core, keeper, traffic
        self.recommender, self.probe_rows = recommender, int(probe_rows)
        n = core.num_envs
        self._rows = np.arange(n)
        self._probed = np.zeros(n, dtype=bool)  # the probe's rows: every stride-th
        if self.probe_rows:
            self._probed[:: -(-n // self.probe_rows)] = True
        self._position = np.zeros(1)
        self.sessions, self.session_steps = 0, 0
        self.expected_rate = np.full(core.catalog.num_items, np.nan)

    def run_day(self, day: int, state: StoreState) -> None:
        if state is not self.keeper.state:
            raise ValueError("run_day needs the state of the store the core sells from")
        core, rng = self.core, self.rng
        total = int(self.traffic.sample(np.array([day]), rng)[0])
        n = core.num_envs
        first = min(total, n)
        active = np.zeros(n, dtype=bool)
        active[:first] = True
        if first:
            core.reset(self._rows[:first], key_from_generator(rng, first))
        waiting = total - first  # sessions of the day not started yet
        expected = np.zeros(core.catalog.num_items)
        probed = steps = 0
        while active.any():
            slots = recommend(self.recommender, core)
            if self.probe_rows:
                rows = np.flatnonzero(active & self._probed)
                items = core.candidates[rows, slots[rows, 0]]
                r = core.shopper.reaction(items[:, None], self._position, rows=rows)
                p = demand_probability(r, items[:, None], self.keeper.stock, self.keeper.params)[:, 0]
                expected += np.bincount(items, weights=p, minlength=expected.size)
                probed += rows.size
            out = core.step(slots, skip=~active, observe=False)
            steps += int(active.sum())
            ended = np.flatnonzero(active & (out.terminated | out.truncated))
            if ended.size:
                again = ended[:waiting]
                if again.size:
                    core.reset(again, key_from_generator(rng, again.size))
                    waiting -= again.size
                active[ended[again.size:]] = False
        self.sessions, self.session_steps = total, steps
        self.expected_rate = expected / probed * (steps / total) if probed else np.full(expected.size, np.nan)
