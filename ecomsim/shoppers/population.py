"""Shopper population: the portrait of each simulated shopper, drawn per session.

A portrait is what a shop knows or could know about a shopper when the session
starts: :class:`~ecomsim.sim.state.Portraits`, the ``portrait`` block of the state table
(segment, channel, interest, price sensitivity, budget, patience, intent; shapes and
units there). :meth:`ShopperPopulation.sample` draws them from the session streams;
:meth:`ShopperPopulation.support` says what it can draw (the observation's bounds come
from it, and portraits given to a reset are checked against it).

Segments and channels follow CALIBRATION.md: web converts best and spends most
(AOV $127 vs app $93), app has ~55% of traffic and converts 30% less, social
converts least (0.74%) and spends least ($82).
"""

from __future__ import annotations

import numpy as np

from ecomsim.catalog import Catalog
from ecomsim.config import CHANNELS
from ecomsim.sim import kernels
from ecomsim.sim.state import Portraits
from ecomsim.sim.streams import NORMAL_BOUND, SessionStreams, categorical_cdf

SEGMENTS = ("bargain_hunter", "quality_seeker", "window_shopper", "mission_buyer")

# Per segment: share, price sensitivity, budget median (currency units), patience, intent.
SEGMENT_SHARE = np.array([0.30, 0.20, 0.32, 0.18])
SEGMENT_PRICE_SENSITIVITY = np.array([1.8, 0.7, 1.1, 0.9])
SEGMENT_BUDGET = np.array([88.0, 275.0, 138.0, 200.0])
SEGMENT_PATIENCE = np.array([13.0, 15.0, 18.0, 9.0])
SEGMENT_INTENT = np.array([-0.2, 0.1, -0.7, 0.6])

# Per channel (app, web, social): traffic share, budget multiplier, intent offset, patience multiplier.
CHANNEL_SHARE = np.array([0.55, 0.30, 0.15])
CHANNEL_BUDGET = np.array([0.78, 1.0, 0.65])
CHANNEL_INTENT = np.array([-0.2, 0.0, -0.95])
CHANNEL_PATIENCE = np.array([1.0, 1.15, 0.75])

# Interest: a favourite category centroid mixed with a second one and noise.
INTEREST_SECOND = 0.35
INTEREST_NOISE = 0.35


class ShopperPopulation:
    """Draws portraits from the session streams, over a catalog's embedding space.

    Args:
        catalog: the catalog whose category centroids anchor the interests.
        channel: ``None`` to draw channels from ``CHANNEL_SHARE``, else a fixed channel name.
    """

    def __init__(self, catalog: Catalog, channel: str | None = None) -> None:
        self.embed_dim = catalog.embed_dim
        cent = np.zeros((catalog.num_categories, catalog.embed_dim))
        np.add.at(cent, catalog.category, catalog.embedding.astype(np.float64))
        norms = np.linalg.norm(cent, axis=1, keepdims=True)
        self.centroids = np.divide(cent, norms, out=np.zeros_like(cent), where=norms > 0)
        counts = np.bincount(catalog.category, minlength=catalog.num_categories).astype(np.float64)
        # the four categorical draws of a portrait (segment, channel, two categories) in one kernel call
        cdfs = [categorical_cdf(SEGMENT_SHARE), categorical_cdf(CHANNEL_SHARE)] + [categorical_cdf(counts / counts.sum())] * 2
        self._sizes = np.array([len(c) for c in cdfs], dtype=np.int64)
        self._cdfs = np.zeros((4, self._sizes.max()))
        for row, cdf in enumerate(cdfs):
            self._cdfs[row, : len(cdf)] = cdf
        self.channel = None if channel is None else CHANNELS.index(channel)

    def sample(self, streams: SessionStreams, idx: np.ndarray) -> Portraits:
        """Draw ``len(idx)`` portraits from the streams ``idx``: per portrait 4 uniforms (segment, channel, two
        categories), then ``3 + d`` normals (budget, sensitivity and patience noise, interest noise)."""
        n = len(idx)
        d = self.embed_dim
        u = streams.uniform(4, idx)
        z = streams.normal(3 + d, idx)
        drawn = np.empty((n, 4), dtype=np.int64)  # = draw_categorical(u[:, c], cdf c), column by column
        kernels.categorical(u, self._cdfs, self._sizes, drawn)
        segment, channel, fav, second = drawn.T
        if self.channel is not None:
            channel = np.full(n, self.channel, dtype=np.int64)
        interest = self.centroids[fav] + INTEREST_SECOND * self.centroids[second] + INTEREST_NOISE * z[:, 3:]
        interest /= np.maximum(np.linalg.norm(interest, axis=1, keepdims=True), 1e-9)
        budget = SEGMENT_BUDGET[segment] * CHANNEL_BUDGET[channel] * np.exp(0.45 * z[:, 0])
        sensitivity = SEGMENT_PRICE_SENSITIVITY[segment] * np.exp(0.25 * z[:, 1])
        patience = SEGMENT_PATIENCE[segment] * CHANNEL_PATIENCE[channel] * np.exp(0.3 * z[:, 2])
        intent = SEGMENT_INTENT[segment] + CHANNEL_INTENT[channel]
        return Portraits(
            segment=segment,
            channel=channel,
            interest=interest,
            price_sensitivity=sensitivity,
            budget=budget,
            patience=patience,
            intent=intent,
        )

    def support(self) -> dict[str, tuple[float, float]]:
        """``(low, high)`` of each float field of every portrait :meth:`sample` can draw (``interest``: per
        component), the same operations on the extreme normals ``+-NORMAL_BOUND``."""
        seg = np.arange(len(SEGMENTS))
        ch = np.arange(len(CHANNELS)) if self.channel is None else np.array([self.channel])
        s, c = np.repeat(seg, len(ch)), np.tile(ch, len(seg))
        z = np.array([-NORMAL_BOUND, NORMAL_BOUND])
        budget = SEGMENT_BUDGET[s][:, None] * CHANNEL_BUDGET[c][:, None] * np.exp(0.45 * z)
        sensitivity = SEGMENT_PRICE_SENSITIVITY[s][:, None] * np.exp(0.25 * z)
        patience = SEGMENT_PATIENCE[s][:, None] * CHANNEL_PATIENCE[c][:, None] * np.exp(0.3 * z)
        intent = SEGMENT_INTENT[s] + CHANNEL_INTENT[c]
        span = lambda a: (float(a.min()), float(a.max()))  # noqa: E731
        return {"interest": (-1.0, 1.0), "price_sensitivity": span(sensitivity), "budget": span(budget),
                "patience": span(patience), "intent": span(intent)}

    def check(self, portraits: Portraits) -> None:
        """Raise ``ValueError`` naming the field, session and value of a portrait this population cannot draw."""
        n = len(portraits.segment)
        for name, size in (("segment", len(SEGMENTS)), ("channel", len(CHANNELS))):
            a = getattr(portraits, name)
            allowed = np.arange(size) if name == "segment" or self.channel is None else np.array([self.channel])
            bad = ~np.isin(a, allowed)
            if bad.any():
                i = int(np.argmax(bad))
                raise ValueError(f"portraits.{name}[{i}] must be one of {allowed.tolist()}, got {int(a[i])}")
        if portraits.interest.shape != (n, self.embed_dim):
            raise ValueError(f"portraits.interest must have shape ({n}, embed_dim={self.embed_dim}), "
                             f"got {portraits.interest.shape}")
        for name, (lo, hi) in self.support().items():
            a = getattr(portraits, name)
            bad = ~((a >= lo) & (a <= hi))
            if bad.any():
                i = tuple(int(v) for v in np.argwhere(bad)[0])
                raise ValueError(f"portraits.{name}{list(i)} must be in [{lo:.6g}, {hi:.6g}] (what the population "
                                 f"draws; the observation bounds assume it), got {float(a[i])!r}")
