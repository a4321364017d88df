"""Recommendation strategies for a returning customer's session, and a per-row mix of them.

A strategy is ``strategy(core) -> slots``: for every session of a
:class:`~ecomsim.sim.core.SimulationCore` it returns ``(num_envs, slate_size)`` int64
indexes into ``core.candidates``, the candidates of highest score (ties: the lower
index first). It reads the core's public state only: the candidates, the session's
portrait (the customer's own interest ``u`` and budget ``B``; with a coupon of ``d``
the portrait's budget is already ``B / (1 - d)``, ``ecomsim.lifecycle.visits``) and
the item table. Scores of candidate item ``i``, ``a_i = <u, e_i>`` its affinity (a
cosine), ``p_i`` its list price:

=============== ==============================================================================
name            score
=============== ==============================================================================
``popularity``  ``popularity_i`` (what ``agents.baselines.PopularityPolicy`` shows)
``relevance``   ``a_i`` (relevance first)
``price_fit``   ``a_i - max(0, log(p_i / B))``: relevant items she can pay for
``margin``      ``log sigmoid(3 a_i - 1.5) + log p_i - max(0, log(p_i / B))``: the log of a rough
                expected margin per impression (a likely click that fits the budget, times the
                price; with one margin rate for every item the margin is proportional to the price)
=============== ==============================================================================

:data:`STRATEGY_NAMES` orders them (the action encoding of ``ecomsim/Retention-v0``);
:class:`RowStrategies` runs a different one in each session of a batch.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ecomsim.sim.core import SimulationCore

#: ``strategy(core) -> (num_envs, slate_size)`` candidate slots to show
Strategy = Callable[[SimulationCore], np.ndarray]
STRATEGY_NAMES = ("popularity", "relevance", "price_fit", "margin")


def top_slots(scores: np.ndarray, k: int) -> np.ndarray:
    """``(n, k)`` int64 indexes of the ``k`` highest scores of each row (ties: the lower index first)."""
    if k == 1:
        return np.argmax(scores, axis=1)[:, None]
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def _affinity(core: SimulationCore) -> np.ndarray:
    """``(n, M)`` cosine of each session's profile interest with its candidates."""
    st = core.state
    return np.einsum("nmd,nd->nm", st.item_table.emb[core.candidates], st.portraits.interest)


def _over_budget(core: SimulationCore) -> np.ndarray:
    """``(n, M)`` ``max(0, log(price / budget))`` (the budget already carries the coupon)."""
    st = core.state
    return np.maximum(0.0, st.item_table.log_price[core.candidates] - np.log(st.portraits.budget)[:, None])


def popularity(core: SimulationCore) -> np.ndarray:
    return top_slots(core.catalog.popularity[core.candidates], core.slate_size)


def relevance(core: SimulationCore) -> np.ndarray:
    return top_slots(_affinity(core), core.slate_size)


def price_fit(core: SimulationCore) -> np.ndarray:
    return top_slots(_affinity(core) - _over_budget(core), core.slate_size)


def margin(core: SimulationCore) -> np.ndarray:
    likely = -np.logaddexp(0.0, -(3.0 * _affinity(core) - 1.5))  # log sigmoid
    log_price = core.state.item_table.log_price[core.candidates]
    return top_slots(likely + log_price - _over_budget(core), core.slate_size)


STRATEGIES: dict[str, Strategy] = {"popularity": popularity, "relevance": relevance, "price_fit": price_fit,
                                   "margin": margin}


class RowStrategies:
    """A strategy that runs ``STRATEGY_NAMES[choice[i]]`` in session ``i`` (set :attr:`choice` before a visit;
    an int: that strategy in every session).

    The core a batch runs on may hold more sessions than visits (``SessionVisits`` pads to a power of two
    with copies of row 0): the extra rows follow ``choice[0]``.
    """

    def __init__(self) -> None:
        #: ``(n,)`` index into STRATEGY_NAMES per visit, or one int for every row of any batch
        self.choice: np.ndarray | int = 0

    def __call__(self, core: SimulationCore) -> np.ndarray:
        size = len(core.candidates)
        if isinstance(self.choice, (int, np.integer)):
            choice = np.full(size, int(self.choice), dtype=np.int64)
        else:
            n = len(self.choice)
            if n == 0 or n > size:
                raise RuntimeError(f"RowStrategies.choice holds {n} rows for a batch of {size} sessions")
            choice = np.concatenate([self.choice, np.full(size - n, self.choice[0], dtype=np.int64)])
        out = np.zeros((size, core.slate_size), dtype=np.int64)
        for k in np.unique(choice):
            rows = choice == k
            out[rows] = STRATEGIES[STRATEGY_NAMES[k]](core)[rows]
        return out
