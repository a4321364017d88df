"""How customers enter: a shopper whose first visit ended in a purchase (:func:`draw_entrants`).

A cohort (CDNOW's, or a shop's new customers of a quarter) is made of shoppers who
bought on their first visit to the shop we follow. So an entrant is drawn by
selection, not assumed: a fresh portrait comes from the shopper population, her
first visit runs as an ordinary anonymous session (intent offset 0, no coupon, no
cart) on the channel the population drew; if she bought, she is the entrant and
that visit is her trial purchase (its categories, experience, abandoned cart carry
into her life); if not, another shopper is drawn. Buyers are thus the kind of
shoppers who buy (more web, bigger budgets, mission buyers), as in a real cohort.

The selection does not depend on the lifecycle parameters, so a calibration draws
the entrants once and reuses them (``Entrants`` is never modified by
:meth:`ecomsim.lifecycle.model.Lifecycle.new_customers`).

Randomness: entrant ``i`` owns a stream keyed from the caller's generator; each
attempt draws her portrait from it, runs the visit on the stream's hashed key, draws
one more number and, if she did not buy, re-keys the stream from its hash.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ecomsim.lifecycle.visits import CART_SLOTS, VisitContext, VisitOutcome, VisitSimulator
from ecomsim.shoppers.population import ShopperPopulation
from ecomsim.sim.streams import SessionStreams, key_from_generator

MAX_ATTEMPTS = 5000  # anonymous first visits tried per entrant before giving up


@dataclass(frozen=True)
class Entrants:
    """``N`` customers at their first purchase (arrays batch-first).

    Attributes:
        first_day: ``(N,)`` int64 day of the trial purchase.
        context: the trial visit's :class:`VisitContext` (portrait and channel).
        trial: the trial visit's :class:`VisitOutcome` (``purchased`` all True).
        streams: each entrant's random stream after the trial (copied before use).
        attempts: ``(N,)`` int64 first visits drawn until this buyer.
    """

    first_day: np.ndarray
    context: VisitContext
    trial: VisitOutcome
    streams: SessionStreams
    attempts: np.ndarray

    def __len__(self) -> int:
        return len(self.first_day)

    def take(self, idx: np.ndarray) -> "Entrants":
        """Entrants ``idx`` alone (their lives are the same as in the whole cohort: streams are per customer)."""
        idx = np.asarray(idx, dtype=np.int64)
        streams = SessionStreams(len(idx))
        for name in ("key", "base", "counter"):
            getattr(streams, name)[:] = getattr(self.streams, name)[idx]
        return Entrants(first_day=self.first_day[idx], context=self.context.take(idx),
                        trial=_take_outcome(self.trial, idx), streams=streams, attempts=self.attempts[idx])

    def streams_copy(self) -> SessionStreams:
        out = SessionStreams(len(self))
        for name in ("key", "base", "counter"):
            getattr(out, name)[:] = getattr(self.streams, name)
        return out


def draw_entrants(population: ShopperPopulation, first_day: np.ndarray, sim: VisitSimulator,
                  rng: np.random.Generator | None = None, keys: np.ndarray | None = None) -> Entrants:
    """Entrants on ``first_day`` ``(N,)``: first visits of fresh shoppers until each one buys (module docstring).

    The entrants' stream keys are drawn from ``rng`` (``key_from_generator(rng, N)``), or given as ``keys``
    ``(N,)`` uint64 (one generator per entrant: a batch of envs); exactly one of the two.

    Raises:
        RuntimeError: a slot found no buyer in ``MAX_ATTEMPTS`` visits (a session world that almost never sells).
    """
    first_day = np.asarray(first_day, dtype=np.int64)
    n = len(first_day)
    streams = SessionStreams(n)
    if (rng is None) == (keys is None):
        raise ValueError("draw_entrants needs rng or keys (exactly one of them)")
    keys = key_from_generator(rng, n) if keys is None else np.asarray(keys, dtype=np.uint64)
    if keys.shape != (n,):
        raise ValueError(f"keys must have shape ({n},) (one per entrant), got {keys.shape}")
    streams.set_keys(np.arange(n), keys)
    contexts: list[tuple[np.ndarray, VisitContext]] = []
    outcomes: list[tuple[np.ndarray, VisitOutcome]] = []
    attempts = np.zeros(n, dtype=np.int64)
    pending = np.arange(n)
    while len(pending):
        if attempts.max() >= MAX_ATTEMPTS:
            raise RuntimeError(f"no purchase in {MAX_ATTEMPTS} first visits for {len(pending)} entrants: the session "
                               f"world converts too rarely to draw a cohort of buyers")
        pt = population.sample(streams, pending)
        m = len(pending)
        ctx = VisitContext(segment=pt.segment, channel=pt.channel, interest=pt.interest, budget=pt.budget,
                           price_sensitivity=pt.price_sensitivity, patience=pt.patience, intent_offset=np.zeros(m),
                           discount=np.zeros(m), cart=np.full((m, CART_SLOTS), -1, dtype=np.int64))
        out = sim.visit(ctx, streams.next_keys(pending))
        streams.uniform(1, pending)  # move on, so the re-key below differs from the visit's key
        attempts[pending] += 1
        bought = out.purchased
        contexts.append((pending[bought], ctx.take(np.flatnonzero(bought))))
        outcomes.append((pending[bought], _take_outcome(out, np.flatnonzero(bought))))
        failed = pending[~bought]
        streams.set_keys(failed, streams.next_keys(failed))
        pending = failed
    return Entrants(first_day=first_day, context=_gather(contexts, n, VisitContext),
                    trial=_gather(outcomes, n, VisitOutcome), streams=streams, attempts=attempts)


def concat_entrants(parts: list[Entrants]) -> Entrants:
    """One :class:`Entrants` of ``parts`` in order (each entrant's life is unchanged: streams are per customer)."""
    streams = SessionStreams(sum(len(p) for p in parts))
    for name in ("key", "base", "counter"):
        getattr(streams, name)[:] = np.concatenate([getattr(p.streams, name) for p in parts])
    join = lambda cls, get: cls(**{f.name: np.concatenate([getattr(get(p), f.name) for p in parts])  # noqa: E731
                                   for f in fields(cls)})
    return Entrants(first_day=np.concatenate([p.first_day for p in parts]), context=join(VisitContext, lambda p: p.context),
                    trial=join(VisitOutcome, lambda p: p.trial), streams=streams,
                    attempts=np.concatenate([p.attempts for p in parts]))


def _take_outcome(out: VisitOutcome, idx: np.ndarray) -> VisitOutcome:
    return VisitOutcome(**{f.name: getattr(out, f.name)[idx] for f in fields(out)})


def _gather(parts: list, n: int, cls):
    """Rows of ``cls`` instances scattered to their entrant slots: ``parts`` is ``[(slots, rows), ...]``."""
    slots = np.concatenate([s for s, _ in parts])
    order = np.argsort(slots, kind="stable")
    assert np.array_equal(slots[order], np.arange(n)), "every entrant has exactly one trial"
    return cls(**{f.name: np.concatenate([getattr(r, f.name) for _, r in parts])[order] for f in fields(cls)})
