"""Shopper population: the portrait of each simulated shopper, drawn per session.

A portrait is what a shop knows or could know about a shopper when the session
starts. Arrays are batch-first, one row per session:

================== ================ ==============================================
field              shape            meaning
================== ================ ==============================================
segment            (N,) int64       index into ``SEGMENTS``
channel            (N,) int64       0 app, 1 web, 2 social (``CHANNELS``)
interest           (N, d) float64   latent interests over the item embedding space (unit norm)
price_sensitivity  (N,) float64     > 0; scales how price above budget hurts
budget             (N,) float64     comfortable spend per item, currency units
patience           (N,) float64     initial patience, in "steps of tolerance"
intent             (N,) float64     initial purchase intent (logit offset)
================== ================ ==============================================

Segments and channels follow CALIBRATION.md: web converts best and spends most
(AOV $127 vs app $93), app has ~55% of traffic and converts 30% less, social
converts least (0.74%) and spends least ($82).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecomsim.catalog import Catalog
from ecomsim.config import CHANNELS
from ecomsim.sim import kernels
from ecomsim.sim.streams import SessionStreams, categorical_cdf

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


@dataclass
class Portraits:
    """Portraits of ``N`` shoppers (see module docstring for the fields)."""

    segment: np.ndarray
    channel: np.ndarray
    interest: np.ndarray
    price_sensitivity: np.ndarray
    budget: np.ndarray
    patience: np.ndarray
    intent: np.ndarray

    @classmethod
    def empty(cls, num_envs: int, embed_dim: int) -> "Portraits":
        return cls(
            segment=np.zeros(num_envs, dtype=np.int64),
            channel=np.zeros(num_envs, dtype=np.int64),
            interest=np.zeros((num_envs, embed_dim)),
            price_sensitivity=np.ones(num_envs),
            budget=np.ones(num_envs),
            patience=np.ones(num_envs),
            intent=np.zeros(num_envs),
        )

    def assign(self, idx: np.ndarray, other: "Portraits") -> None:
        """Write ``other`` (``len(idx)`` rows) into rows ``idx``."""
        for name in self.__dataclass_fields__:
            getattr(self, name)[idx] = getattr(other, name)

    def take(self, idx: np.ndarray) -> "Portraits":
        return Portraits(**{name: getattr(self, name)[idx] for name in self.__dataclass_fields__})


class ShopperPopulation:
    """Draws portraits from the session streams, over a catalog's embedding space.

    Args:
        catalog: the catalog whose category centroids anchor the interests.
        channel: ``None`` to draw channels from ``CHANNEL_SHARE``, else a fixed channel name.
    """

    #: uniforms used per portrait: segment, channel, 2 categories, 3 lognormal noises
    #: (6 uniforms via Box-Muller) and the interest noise (2 * d).
    def __init__(self, catalog: Catalog, channel: str | None = None) -> None:
        self.embed_dim = catalog.embed_dim
        self.num_categories = catalog.num_categories
        cent = np.zeros((catalog.num_categories, catalog.embed_dim))
        np.add.at(cent, catalog.category, catalog.embedding.astype(np.float64))
        norms = np.linalg.norm(cent, axis=1, keepdims=True)
        self.centroids = np.divide(cent, norms, out=np.zeros_like(cent), where=norms > 0)
        counts = np.bincount(catalog.category, minlength=catalog.num_categories).astype(np.float64)
        self.category_share = counts / counts.sum()
        # the four categorical draws of a portrait (segment, channel, two categories) in one kernel call
        cdfs = [categorical_cdf(SEGMENT_SHARE), categorical_cdf(CHANNEL_SHARE)] + [categorical_cdf(self.category_share)] * 2
        self._sizes = np.array([len(c) for c in cdfs], dtype=np.int64)
        self._cdfs = np.zeros((4, self._sizes.max()))
        for row, cdf in enumerate(cdfs):
            self._cdfs[row, : len(cdf)] = cdf
        self.channel = None if channel is None else CHANNELS.index(channel)

    def sample(self, streams: SessionStreams, idx: np.ndarray) -> Portraits:
        """Draw ``len(idx)`` portraits from the streams ``idx``."""
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
