"""Candidate retrieval: which ``num_candidates`` items a session is offered at each step.

Each step the shopper is offered ``M = num_candidates`` items, in this order:

1. ``round(popular_share * M)`` popular items, drawn with probability proportional
   to popularity from the catalog's ``POPULAR_POOL`` most popular items;
2. ``round(personal_share * M)`` personalised items, a random subset of the
   session's pool. The pool comes from an approximate-nearest-neighbour index, as
   in production two-tower retrieval: ``NUM_ANCHORS`` anchor directions (catalog
   item embeddings picked with a fixed seed) each hold their ``pool_size`` items
   of highest affinity, computed once per catalog; a session gets the pool of the
   anchor closest to its *noisy* profile ``interest + retrieval_noise * z`` (``z``
   standard normal, drawn once per session);
3. the rest uniformly at random from the catalog.

A duplicate inside one list is replaced once by a uniformly random item (rare
duplicates may survive; they are harmless: the same item twice). The per-step draw
runs in ``kernels._retrieve_row`` from ``2 M + 2`` of the session's uniforms; this
module builds its tables (the ``retrieval`` block of ``ecomsim.sim.state``).
"""

from __future__ import annotations

import numpy as np

from ecomsim.catalog import Catalog
from ecomsim.sim import kernels
from ecomsim.sim.state import RETRIEVAL, Block, SimState

POPULAR_POOL = 100  # popular candidates come from this many most popular items
NUM_ANCHORS = 256  # anchors of the personalised-retrieval index
BUCKETS = 4096  # buckets of the popular draw's lookup table (a power of two)
ANCHOR_CHUNK = 16  # anchors whose pools are selected together (bounds the build's temporaries, ecomsim.sim.memory)


def candidate_mix(num_candidates: int, popular_share: float, personal_share: float) -> tuple[int, int]:
    """``(n_popular, n_personal)`` candidates per list; the rest are uniformly random."""
    return int(round(popular_share * num_candidates)), int(round(personal_share * num_candidates))


def pool_size(n_personal: int, num_items: int) -> int:
    """Items in a session's pool: a prime (a random stride then enumerates distinct entries), at most the catalog."""
    return min(_prime_at_least(max(2 * n_personal, 7)), num_items)


def build_tables(catalog: Catalog, emb: np.ndarray, pool: int) -> Block:
    """The ``retrieval`` block of ``catalog`` (once per catalog); ``emb`` ``(I, d)`` its unit-norm embeddings."""
    popular_items = np.argsort(-catalog.popularity, kind="stable")[: min(POPULAR_POOL, catalog.num_items)]
    popular_cdf = np.cumsum(catalog.popularity[popular_items])
    popular_cdf /= popular_cdf[-1]
    popular_low, popular_exact = popular_buckets(popular_cdf)
    num_items = emb.shape[0]
    pick = np.random.default_rng(0).choice(num_items, size=min(NUM_ANCHORS, num_items), replace=False)
    anchors = emb[np.sort(pick)]
    scores = anchors @ emb.T
    if pool < num_items:
        # a few anchors at a time: the negated scores and argpartition's indexes are (chunk, I), not (A, I)
        # (each row is partitioned on its own, so the result is the same)
        top = np.empty((len(anchors), pool), dtype=np.int64)
        for r in range(0, len(anchors), ANCHOR_CHUNK):
            top[r : r + ANCHOR_CHUNK] = np.argpartition(-scores[r : r + ANCHOR_CHUNK], pool - 1, axis=1)[:, :pool]
    else:
        top = np.broadcast_to(np.arange(num_items), scores.shape).copy()
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    mark = np.full(num_items + 1, -1, dtype=np.int64)
    mark[-1] = 0
    return Block(RETRIEVAL, {
        "popular_items": popular_items, "popular_cdf": popular_cdf, "popular_low": popular_low,
        "popular_exact": popular_exact, "anchors": anchors, "anchor_pools": np.take_along_axis(top, order, axis=1),
        "mark": mark,
    })


def draw_pools(state: SimState, idx: np.ndarray, retrieval_noise: float) -> None:
    """The pools of sessions ``idx`` from their noisy profiles (draws ``embed_dim`` normals per session)."""
    z = state.streams.normal(state.catalog.embed_dim, idx)
    noisy = state.portraits.interest[idx] + retrieval_noise * z
    tables = state.retrieval
    state.session.pool[idx] = tables.anchor_pools[np.argmax(noisy @ tables.anchors.T, axis=1)]


def retrieve(state: SimState, u: np.ndarray, off: int, idx: np.ndarray) -> None:
    """New candidates of sessions ``idx`` from ``u[:, off : off + 2 M + 2]`` (row ``i`` for session ``idx[i]``)."""
    kernels.retrieve(u, off, idx, state.session.bundle, state.retrieval.bundle, state.consts)


def popular_buckets(cdf: np.ndarray, buckets: int = BUCKETS) -> tuple[np.ndarray, np.ndarray]:
    """Bucket table of the popular draw (``kernels._retrieve_row``): ``searchsorted(cdf, u, side="right")`` in
    O(1) for most ``u``.

    Why: a binary search per draw costs ~80 ns of branch misses. The unit interval is
    cut into ``buckets`` (a power of two, so ``floor(u * buckets)`` is exact); each
    bucket stores the search result at its left end and whether its right end gives the
    same one (the search is monotone in ``u``); only the buckets holding a cdf value
    (at most ``len(cdf)``) are searched. Same indices, bit for bit.
    """
    edges = np.arange(buckets + 1, dtype=np.float64) / buckets
    low = np.searchsorted(cdf, edges[:-1], side="right").astype(np.int64)
    high = np.searchsorted(cdf, np.nextafter(edges[1:], 0.0), side="right")
    return low, low == high


def _prime_at_least(x: int) -> int:
    def is_prime(v: int) -> bool:
        return v >= 2 and all(v % q for q in range(2, int(v**0.5) + 1))

    while not is_prime(x):
        x += 1
    return x
