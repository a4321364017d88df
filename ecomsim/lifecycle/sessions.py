"""Visits as real sessions of the batched core (:class:`SessionVisits`).

Each batch of visits runs on a :class:`ecomsim.sim.core.SimulationCore` built from
an :class:`ecomsim.config.EnvConfig` (default: the reference world on the reference
catalog) under a recommendation strategy (default ``popularity``: the most popular
candidate each step, as ``agents.baselines.PopularityPolicy``). Nothing of the
session world changes: the core draws every anonymous portrait as usual (so its
random streams advance exactly as for an ordinary session) and the customer's own
portrait then replaces the drawn one (:class:`_CustomerPopulation`). A context with
``intent_offset = 0``, no coupon and an empty cart, given the drawn portrait, is an
ordinary session bit for bit (tested).

The portrait goes in through a population subclass that replaces the core state's
``population`` (what ``SimulationCore.reset`` draws from); the core is otherwise
used through its public ``reset`` / ``step`` / ``candidates``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ecomsim.catalog import Catalog
from ecomsim.config import EnvConfig
from ecomsim.assembly import build_core
from ecomsim.lifecycle.visits import (
    CART_SLOTS,
    DISAPPOINTING_QUALITY,
    RELEVANT_AFFINITY,
    VisitContext,
    VisitOutcome,
    checkout,
    push_cart,
    recover_cart,
    visit_streams,
)
from ecomsim.shoppers.population import Portraits, ShopperPopulation
from ecomsim.sim.core import SimulationCore
from ecomsim.sim.streams import SessionStreams

#: ``strategy(core) -> (num_envs, slate_size)`` candidate slots to show
Strategy = Callable[[SimulationCore], np.ndarray]


def popularity_strategy(core: SimulationCore) -> np.ndarray:
    """The most popular candidates first (what ``agents.baselines.PopularityPolicy`` picks)."""
    scores = core.catalog.popularity[core.candidates]
    k = core.slate_size
    if k == 1:
        return np.argmax(scores, axis=1)[:, None]
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


STRATEGIES: dict[str, Strategy] = {"popularity": popularity_strategy}
REFERENCE_SESSIONS = EnvConfig(user_model="reference", catalog="reference")


class _CustomerPopulation(ShopperPopulation):
    """Draws the anonymous portraits as usual, then writes the visiting customers' own over them."""

    def __init__(self, catalog: Catalog, channel: str | None = None) -> None:
        super().__init__(catalog, channel)
        self.context: VisitContext | None = None  # rows aligned with the ``idx`` of the next ``sample``

    def sample(self, streams, idx: np.ndarray) -> Portraits:
        drawn = super().sample(streams, idx)
        ctx = self.context
        if ctx is None:
            return drawn
        assert len(ctx) == len(idx), "context rows must match the sessions being reset"
        return Portraits(segment=ctx.segment.astype(np.int64), channel=ctx.channel.astype(np.int64),
                         interest=ctx.interest.astype(np.float64), price_sensitivity=ctx.price_sensitivity.astype(np.float64),
                         budget=ctx.effective_budget(), patience=ctx.patience.astype(np.float64), intent=ctx.intent())


class SessionVisits:
    """Visits simulated by real sessions of the core (a :class:`~ecomsim.lifecycle.visits.VisitSimulator`).

    Args:
        config: the session world (``user_model``, ``catalog``, ``max_steps``, ...); its ``mode`` must
            be ``"recommend"`` or ``"slate"`` as the strategy expects.
        strategy: a name in ``STRATEGIES`` or a callable ``strategy(core) -> slots``.
        max_batch: most sessions stepped together (larger batches are split).
    """

    def __init__(self, config: EnvConfig = REFERENCE_SESSIONS, strategy: str | Strategy = "popularity",
                 max_batch: int = 4096) -> None:
        if isinstance(strategy, str):
            if strategy not in STRATEGIES:
                raise ValueError(f"strategy must be one of {list(STRATEGIES)} or a callable, got {strategy!r}")
            strategy = STRATEGIES[strategy]
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be a positive integer, got {max_batch!r}")
        self.config = config
        self.strategy = strategy
        self.max_batch = max_batch
        self._cores: dict[int, SimulationCore] = {}
        self.catalog = self._core(1).catalog
        #: ``(num_items,)`` times each item was shown in the sessions run so far (the emulator's fit reads it)
        self.shown_counts = np.zeros(self.catalog.num_items, dtype=np.int64)
        emb = self.catalog.embedding.astype(np.float64)
        # unit-norm embeddings, as the core's affinities use (cosines whatever the catalog's scale)
        self._unit_emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)

    def _core(self, size: int) -> SimulationCore:
        """A core of ``size`` sessions (powers of two, built once each: building costs more than stepping)."""
        if size not in self._cores:
            shared = self._cores[next(iter(self._cores))] if self._cores else None
            core = build_core(self.config, size, None if shared is None else shared.catalog)
            # the population the core's reset draws from (``SimState.population``): anonymous draws as usual,
            # then the customers' own portraits over them
            core.state.population = _CustomerPopulation(core.catalog, self.config.channel)
            self._cores[size] = core
        return self._cores[size]

    def anonymous_context(self, keys: np.ndarray) -> VisitContext:
        """The context of ordinary sessions seeded with stream ``keys`` ``(n,)``: the portraits they draw."""
        n = len(keys)
        streams = SessionStreams(n)
        streams.set_keys(np.arange(n), keys)
        drawn = ShopperPopulation(self.catalog, self.config.channel).sample(streams, np.arange(n))
        return VisitContext(segment=drawn.segment, channel=drawn.channel, interest=drawn.interest,
                            budget=drawn.budget, price_sensitivity=drawn.price_sensitivity, patience=drawn.patience,
                            intent_offset=np.zeros(n), discount=np.zeros(n),
                            cart=np.full((n, CART_SLOTS), -1, dtype=np.int64))

    def visit(self, context: VisitContext, keys: np.ndarray) -> VisitOutcome:
        """Run one session per row of ``context``; visit ``i`` draws from stream ``keys[i]`` only."""
        context.validate()
        n = len(context)
        u, keys = visit_streams(keys)
        recovered, cart_left = recover_cart(context, self.catalog, u)
        parts = [self._run(context.take(np.arange(lo, min(lo + self.max_batch, n))), keys[lo: lo + self.max_batch])
                 for lo in range(0, n, self.max_batch)] if n else []
        if not parts:
            return _empty_outcome(self.catalog.num_categories)
        s = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        revenue, cost, items, cats = checkout(self.catalog, context, recovered, s["items"], s["revenue"], s["bought"])
        return VisitOutcome(purchased=items > 0, revenue=revenue, discount_cost=cost, items_bought=items,
                            categories_bought=cats, recovered=recovered.sum(axis=1), clicks=s["clicks"],
                            relevant_shown=s["relevant"], impressions=s["impressions"],
                            disappointments=s["disappointments"], session_length=s["length"],
                            cart=push_cart(cart_left, s["abandoned"]))

    def run_keys(self, context: VisitContext, keys: np.ndarray) -> dict[str, np.ndarray]:
        """The session figures of :meth:`visit` for the session stream ``keys`` themselves (no carried cart):
        ``items``, ``revenue`` (list prices), ``bought`` ``(n, C)``, ``length``, ``impressions``, ``clicks``,
        ``disappointments``, ``relevant``, ``abandoned`` ``(n, CART_SLOTS)``; what the emulator is fitted on."""
        return self._run(context, keys)

    def _run(self, context: VisitContext, keys: np.ndarray) -> dict[str, np.ndarray]:
        n = len(context)
        size = 1 << max(0, int(np.ceil(np.log2(n))))
        core = self._core(size)
        # unused rows of a power-of-two core run an ordinary session and are dropped
        pad = size - n
        if pad:
            context = _pad(context, pad)
            keys = np.concatenate([keys, keys[:1].repeat(pad)])
        core.state.population.context = context
        core.reset(np.arange(size), keys)
        core.state.population.context = None
        cat = self.catalog
        emb = self._unit_emb
        c = cat.num_categories
        live = np.ones(size, dtype=bool)
        real = np.arange(size) < n  # the padding rows are not counted
        out = {name: np.zeros(size, dtype=np.int64) for name in
               ("clicks", "relevant", "impressions", "disappointments", "length", "items")}
        out["revenue"] = np.zeros(size)
        out["bought"] = np.zeros((size, c), dtype=bool)
        abandoned = np.full((size, CART_SLOTS), -1, dtype=np.int64)
        interest = context.interest
        for _ in range(self.config.max_steps):
            step = core.step(self.strategy(core))
            items = np.where(step.shown, step.items, 0)
            shown = step.shown & live[:, None]
            relevant = (np.einsum("nkd,nd->nk", emb[items], interest) >= RELEVANT_AFFINITY) & shown
            out["relevant"] += relevant.sum(axis=1)
            out["impressions"] += shown.sum(axis=1)
            self.shown_counts += np.bincount(items[shown & real[:, None]], minlength=cat.num_items)
            clicked = step.clicked & live[:, None]
            out["clicks"] += clicked.sum(axis=1)
            out["disappointments"] += (clicked & (cat.quality[items] < DISAPPOINTING_QUALITY)).sum(axis=1)
            bought = step.purchased & live[:, None]
            out["items"] += bought.sum(axis=1)
            out["revenue"] += np.where(live, step.revenue, 0.0)
            rows, slots = np.nonzero(bought)
            out["bought"][rows, cat.category[items[rows, slots]]] = True
            left_in_cart = step.carted & ~step.purchased & live[:, None]
            if left_in_cart.any():
                abandoned = push_cart(abandoned, np.where(left_in_cart, items, -1))
            out["length"] += live
            live &= ~(step.terminated | step.truncated)
            if not live.any():
                break
        out["abandoned"] = abandoned
        return {k: v[:n] for k, v in out.items()}


def _pad(context: VisitContext, pad: int) -> VisitContext:
    idx = np.concatenate([np.arange(len(context)), np.zeros(pad, dtype=np.int64)])
    return context.take(idx)


def _empty_outcome(num_categories: int) -> VisitOutcome:
    z = np.zeros(0, dtype=np.int64)
    return VisitOutcome(purchased=np.zeros(0, dtype=bool), revenue=np.zeros(0), discount_cost=np.zeros(0),
                        items_bought=z, categories_bought=np.zeros((0, num_categories), dtype=bool), recovered=z,
                        clicks=z, relevant_shown=z, impressions=z, disappointments=z, session_length=z,
                        cart=np.zeros((0, CART_SLOTS), dtype=np.int64))
