"""The batched simulation core: ``num_envs`` shopping sessions in arrays, stepped at once.

Both env views (``ecomsim.envs``) are thin layers over :class:`SimulationCore`; the
single env is a core of one session, so the two cannot disagree.

**Candidate retrieval.** Each step the shopper is offered ``num_candidates`` items,
in this order:

1. ``round(popular_share * M)`` popular items, drawn with probability proportional
   to popularity from the catalog's ``POPULAR_POOL`` most popular items;
2. ``round(personal_share * M)`` personalised items, a random subset of the
   session's pool. The pool comes from an approximate-nearest-neighbour index, as
   in production two-tower retrieval: ``NUM_ANCHORS`` anchor directions (catalog
   item embeddings picked with a fixed seed) each hold their ``personal_pool`` items
   of highest affinity, computed once per catalog; a session gets the pool of the
   anchor closest to its *noisy* profile ``interest + retrieval_noise * z`` (``z``
   standard normal, drawn once per session);
3. the rest uniformly at random from the catalog.

A duplicate inside one list is replaced once by a uniformly random item (rare
duplicates may survive; they are harmless: the same item twice).

**Randomness.** Every draw comes from the session's own counter-based stream
(``ecomsim.sim.streams``), keyed from the env's ``np_random``; a fixed number of numbers is
drawn per step, so sessions never influence each other.

**Execution.** The step runs as compiled loops over the sessions
(``ecomsim.sim.kernels``): each computes one session's row from that session's state
only, so sub-env ``i`` of a vector env equals a single env bit for bit. The numpy
definitions they follow are in ``tests/sim/test_kernels.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecomsim.sim import kernels
from ecomsim.catalog import Catalog
from ecomsim.config import CHANNELS, EnvConfig
from ecomsim.sim.observation import observe
from ecomsim.shoppers.population import SEGMENTS, Portraits, ShopperPopulation
from ecomsim.sim.streams import SessionStreams
from ecomsim.shoppers.base import Reaction, ShopperModel

HISTORY = 10  # steps of shown items remembered for repeat counts
POPULAR_POOL = 100  # popular candidates come from this many most popular items
NUM_ANCHORS = 256  # anchors of the personalised-retrieval index


@dataclass
class StepOutcome:
    """Raw outcome of one core step, all batch-first.

    ``items`` is ``(N, k)`` with ``-1`` for empty slots (repeated picks); the bool
    arrays are ``(N, k)``; ``clicks`` / ``carts`` / ``purchases`` count them per
    session; ``revenue`` is currency units this step.
    """

    items: np.ndarray
    shown: np.ndarray
    clicked: np.ndarray
    carted: np.ndarray
    purchased: np.ndarray
    clicks: np.ndarray
    carts: np.ndarray
    purchases: np.ndarray
    revenue: np.ndarray
    left: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray


class SimulationCore:
    """State and dynamics of ``num_envs`` sessions.

    Args:
        config: the env configuration.
        catalog: the items on offer.
        shopper: the shopper model (bound to this core here).
        num_envs: number of sessions stepped together.
    """

    def __init__(self, config: EnvConfig, catalog: Catalog, shopper: ShopperModel, num_envs: int) -> None:
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.config = config
        self.catalog = catalog
        self.num_envs = n = num_envs
        self.num_candidates = m = config.num_candidates
        self.slate_size = k = config.slate_size
        if catalog.num_items < m:
            raise ValueError(f"catalog has {catalog.num_items} items, fewer than num_candidates={m}")
        self.population = ShopperPopulation(catalog, config.channel)
        self.streams = SessionStreams(n)
        self.portraits = Portraits.empty(n, catalog.embed_dim)

        # retrieval recipe
        self.n_popular = int(round(config.popular_share * m))
        self.n_personal = int(round(config.personal_share * m))
        self.n_random = m - self.n_popular - self.n_personal
        pool = min(POPULAR_POOL, catalog.num_items)
        self._popular_items = np.argsort(-catalog.popularity, kind="stable")[:pool]
        self._popular_cdf = np.cumsum(catalog.popularity[self._popular_items])
        self._popular_cdf /= self._popular_cdf[-1]
        self._popular_low, self._popular_exact = popular_buckets(self._popular_cdf)
        self._mark = np.full(catalog.num_items + 1, -1, dtype=np.int64)  # item marker of the kernels (next_stamp)
        self._mark[-1] = 0
        # a prime pool size lets a random stride enumerate distinct pool entries
        self.personal_pool = min(_prime_at_least(max(2 * self.n_personal, 7)), catalog.num_items)
        self.pool = np.zeros((n, self.personal_pool), dtype=np.int64)
        emb = catalog.embedding.astype(np.float64)
        # unit-norm embeddings: affinities are cosines in [-1, 1] whatever the catalog's scale
        self._emb64 = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)

        # observable session state (the integer counters are rows of one block: one kernel argument)
        self._ints = np.zeros((6, n), dtype=np.int64)  # rows in the order of kernels.STEP ... NO_CLICK_RUN
        self.step_count, self.clicks, self.carts, self.purchases, self.impressions, self.no_click_run = self._ints
        self.revenue = np.zeros(n)
        self.last_clicked = np.zeros(n, dtype=bool)
        self.bought = np.zeros((n, catalog.num_categories), dtype=bool)
        self.recent = np.full((n, HISTORY * k), -1, dtype=np.int64)
        self.clicked_emb = np.zeros((n, catalog.embed_dim))  # mean embedding of clicked items
        self.candidates = np.zeros((n, m), dtype=np.int64)
        self._rows = np.arange(n)
        self._no_skip = np.zeros(n, dtype=bool)
        self._positions = np.arange(k, dtype=np.float64)
        self._draws_per_step = 3 * k + 1 + 2 * m + 2
        self._u = np.empty((n, self._draws_per_step))  # the step's uniforms (internal; rewritten every step)
        self._next_obs: np.ndarray | None = None  # the observation a fused step wrote (handed out once)
        self._reward_kind = kernels.REWARD_KINDS.index(config.reward)
        self._category = np.ascontiguousarray(catalog.category, dtype=np.int64)

        self._init_features()
        self._build_index()
        self.shopper = shopper
        shopper.bind(self)

    # ================================================================ features
    def _init_features(self) -> None:
        cat = self.catalog
        c, d = cat.num_categories, cat.embed_dim
        log_price = np.log(cat.price)
        self._log_price = log_price
        lp_mean, lp_std = float(log_price.mean()), float(log_price.std()) or 1.0
        rel_pop = np.log(cat.popularity * cat.num_items)
        item = np.zeros((cat.num_items, c + 3 + d), dtype=np.float32)
        item[np.arange(cat.num_items), cat.category] = 1.0
        item[:, c] = (log_price - lp_mean) / lp_std
        item[:, c + 1] = cat.quality
        item[:, c + 2] = rel_pop / 3.0
        item[:, c + 3 :] = self._emb64
        self.item_features = item
        self.item_feature_names = (
            [f"cat_{name}" for name in cat.category_names]
            + ["log_price_z", "quality", "rel_popularity"]
            + [f"emb_{j}" for j in range(d)]
        )
        dyn = ["seen", "affinity", "log_price_over_budget", "category_bought"]
        self.candidate_feature_names = self.item_feature_names + dyn
        self.portrait_feature_names = (
            [f"segment_{s}" for s in SEGMENTS]
            + [f"channel_{ch}" for ch in CHANNELS]
            + [f"interest_{j}" for j in range(d)]
            + ["log_budget", "price_sensitivity"]
        )
        self.session_feature_names = [
            "step_frac",
            "clicks",
            "carts",
            "purchases",
            "no_click_run",
            "last_clicked",
        ] + [f"bought_{name}" for name in cat.category_names]
        self.obs_dim = (
            len(self.portrait_feature_names)
            + len(self.session_feature_names)
            + self.num_candidates * len(self.candidate_feature_names)
        )

    def observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature ``(low, high)`` of the flat observation."""
        inf = np.inf
        port = {"log_budget": (-inf, inf), "price_sensitivity": (0.0, inf)}
        low, high = [], []
        for name in self.portrait_feature_names:
            lo, hi = port.get(name, (-1.0, 1.0) if name.startswith("interest") else (0.0, 1.0))
            low.append(lo)
            high.append(hi)
        for _ in self.session_feature_names:
            low.append(0.0)
            high.append(1.0)
        cand = {
            "log_price_z": (-inf, inf),
            "rel_popularity": (-inf, inf),
            "affinity": (-1.0, 1.0),
            "log_price_over_budget": (-inf, inf),
        }
        for _ in range(self.num_candidates):
            for name in self.candidate_feature_names:
                lo, hi = cand.get(name, (-1.0, 1.0) if name.startswith("emb_") else (0.0, 1.0))
                low.append(lo)
                high.append(hi)
        return np.array(low, dtype=np.float32), np.array(high, dtype=np.float32)

    # ================================================================= catalog
    def set_catalog(self, catalog: Catalog) -> None:
        """Swap the catalog of this core (``catalog="gan"`` envs do this at reset).

        Every catalog-derived array is recomputed by building a fresh core on the new
        catalog and taking its state (so nothing derived from the old catalog survives,
        whatever ``__init__`` computes), then the shopper model is re-bound. The random
        streams are kept, so unseeded resets still continue the old sequence. All
        sessions must be ``reset`` afterwards: their state referred to the old items.
        The observation layout must not change: same category names, same embedding dim.
        """
        old = self.catalog
        if catalog.category_names != old.category_names or catalog.embed_dim != old.embed_dim:
            raise ValueError(
                "set_catalog needs the same category names and embedding dim as the env's spaces: expected "
                f"{list(old.category_names)} and embed_dim={old.embed_dim}, got {list(catalog.category_names)} "
                f"and embed_dim={catalog.embed_dim}"
            )
        streams = self.streams
        fresh = SimulationCore(self.config, catalog, self.shopper, self.num_envs)
        self.__dict__.update(fresh.__dict__)
        self.streams = streams
        self.shopper.bind(self)

    # =================================================================== reset
    def reset(self, idx: np.ndarray, keys: np.ndarray | None = None) -> None:
        """Start new sessions in rows ``idx``; ``keys`` seeds their streams (else derived from the old ones)."""
        idx = np.asarray(idx, dtype=np.int64)
        if len(idx) == 0:
            return
        if keys is None:
            keys = self.streams.next_keys(idx)
        self.streams.set_keys(idx, keys)
        self.portraits.assign(idx, self.population.sample(self.streams, idx))
        self._ints[:, idx] = 0
        self.revenue[idx] = 0.0
        self.last_clicked[idx] = False
        self.bought[idx] = False
        self.recent[idx] = -1
        self.clicked_emb[idx] = 0.0
        self._build_pools(idx)
        self.shopper.reset_sessions(idx)
        self._retrieve(self.streams.uniform(2 * self.num_candidates + 2, idx), 0, idx)
        if self._next_obs is not None:  # a fused step's observation: re-observe the sessions started here
            self._next_obs[idx] = observe(self, idx)

    def _build_index(self) -> None:
        """Anchor directions and their top-``personal_pool`` items (once per catalog)."""
        emb = self._emb64
        num_items = emb.shape[0]
        pick = np.random.default_rng(0).choice(num_items, size=min(NUM_ANCHORS, num_items), replace=False)
        self._anchors = emb[np.sort(pick)]
        scores = self._anchors @ emb.T
        p = self.personal_pool
        if p < num_items:
            top = np.argpartition(-scores, p - 1, axis=1)[:, :p]
        else:
            top = np.broadcast_to(np.arange(num_items), scores.shape).copy()
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        self._anchor_pools = np.take_along_axis(top, order, axis=1)

    def _build_pools(self, idx: np.ndarray) -> None:
        z = self.streams.normal(self.catalog.embed_dim, idx)
        noisy = self.portraits.interest[idx] + self.config.retrieval_noise * z
        self.pool[idx] = self._anchor_pools[np.argmax(noisy @ self._anchors.T, axis=1)]

    def _retrieve(self, u: np.ndarray, off: int, idx: np.ndarray) -> None:
        """New candidates of sessions ``idx`` from ``u[:, off : off + 2 M + 2]`` (``kernels.retrieve``)."""
        kernels.retrieve(u, off, idx, self.pool, self._popular_items, self._popular_cdf, self._popular_low,
                         self._popular_exact, self.n_popular, self.n_personal, self.catalog.num_items, self._mark,
                         self.candidates)

    # ==================================================================== step
    def check_actions(self, actions: np.ndarray) -> np.ndarray:
        """Validate and return actions as ``(num_envs, slate_size)`` int64 candidate indexes."""
        n, k, m = self.num_envs, self.slate_size, self.num_candidates
        arr = np.asarray(actions)
        if self.config.mode == "recommend":
            expected = (n,)
            if arr.shape == (n, 1):
                arr = arr[:, 0]
        else:
            expected = (n, k)
        if arr.shape != expected:
            raise ValueError(f"actions must have shape {expected} (num_envs={n}, slate_size={k}), got {arr.shape}")
        if not np.issubdtype(arr.dtype, np.integer):
            if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
                arr = arr.astype(np.int64)
            else:
                raise ValueError(f"actions must be integer candidate indexes in [0, {m - 1}], got dtype {arr.dtype}")
        bad = (arr < 0) | (arr >= m)
        if bad.any():
            raise ValueError(f"actions must be candidate indexes in [0, {m - 1}], got {arr[bad].ravel()[:5].tolist()}")
        return arr.reshape(n, k).astype(np.int64, copy=False)

    @property
    def can_skip(self) -> bool:
        """Whether :meth:`step` takes ``skip`` (the shopper model has a ``fused_step``)."""
        return self.shopper.fused_step is not None

    def step(self, slots: np.ndarray, skip: np.ndarray | None = None) -> StepOutcome:
        """Show the candidates at ``slots`` ``(N, k)`` int64 to every session and sample the outcomes.

        Compiled passes over the sessions (``ecomsim.sim.kernels``) around the shopper model:
        ``gather`` the shown items, the model's ``reaction``, ``sample`` the funnel from
        the step's uniforms, the model's ``update``, ``advance`` the counters, and
        ``retrieve`` the next candidates from the same uniforms. A model with a
        ``fused_step`` (the DNN) does all of it, and the next observation, with the same
        row functions around its forward.

        ``skip`` ((N,) bool, only when :attr:`can_skip`): sessions just started by
        :meth:`reset` (a vector env's NEXT_STEP autoreset) that this step leaves as they
        are (nothing shown, zero outcomes, no draws) and only observes.
        """
        n, k = self.num_envs, self.slate_size
        # the outcome arrays are handed out (infos): fresh ones every step
        items = np.empty((n, k), dtype=np.int64)
        flags = np.empty((4, n, k), dtype=bool)  # shown, clicked, carted, purchased
        ends = np.empty((3, n), dtype=bool)  # left, terminated, truncated
        counts = np.empty((3, n), dtype=np.int64)  # clicks, carts, purchases
        money = np.empty((2, n))  # revenue, reward
        fused = self.shopper.fused_step
        if fused is not None:
            self._next_obs = fused(slots, items, flags, counts, money, ends, self._no_skip if skip is None else skip)
        elif skip is not None:
            raise ValueError(f"step(skip=...) needs a shopper model with a fused step; {self.shopper.name!r} has none")
        else:
            self._next_obs = None
            kernels.gather(self.candidates, slots, items, flags[0])
            r = self.shopper.reaction(items, self._positions)
            st = self.streams
            kernels.sample(st.base, st.counter, self._u, r.click, r.cart, r.purchase, r.leave, flags, ends)
            self.shopper.update(items, flags[0], flags[1], flags[2], flags[3])
            kernels.advance(items, flags, self.catalog.price, self._category, self._emb64, self._ints, self.revenue,
                            self.last_clicked, self.clicked_emb, self.bought, self.recent, self._reward_kind,
                            self.config.max_steps, counts, money, ends)
            self._retrieve(self._u, 3 * k + 1, self._rows)
        shown, clicked, carted, purchased = flags
        return StepOutcome(
            items=items if k == 1 else np.where(shown, items, -1),
            shown=shown,
            clicked=clicked,
            carted=carted,
            purchased=purchased,
            clicks=counts[0],
            carts=counts[1],
            purchases=counts[2],
            revenue=money[0],
            left=ends[0],
            reward=money[1],
            terminated=ends[1],
            truncated=ends[2],
        )

    # ============================================================ observation
    def repeat_counts(self, items: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """``(n, k)`` times each item was shown in the session's last ``HISTORY`` steps."""
        recent = self.recent if rows is None else self.recent[rows]
        return (items[:, :, None] == recent[:, None, :]).sum(axis=2)

    def category_bought(self, items: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """``(n, k)`` 1.0 where the item's category was bought this session."""
        bought = self.bought if rows is None else self.bought[rows]
        cats = self.catalog.category[items]
        r = np.arange(items.shape[0])[:, None]
        return bought[r, cats].astype(np.float64)

    def candidate_reaction(self) -> Reaction:
        """Shopper-model probabilities for every candidate shown alone in the top slot.

        This is what a myopic oracle (the greedy baseline) ranks by; pure, no state change.
        """
        return self.shopper.reaction(self.candidates, np.zeros(self.num_candidates))

    def observe(self, rows: np.ndarray | None = None) -> np.ndarray:
        """``(num_envs, obs_dim)`` float32 observations (layout in the ``*_feature_names`` lists).

        ``rows`` selects sessions (``observe(rows) == observe()[rows]``). Built by
        :func:`ecomsim.sim.observation.observe` (or already by a fused step: handed out once).
        """
        if rows is None and self._next_obs is not None:
            obs, self._next_obs = self._next_obs, None
            return obs
        return observe(self, rows)


def popular_buckets(cdf: np.ndarray, buckets: int = 4096) -> tuple[np.ndarray, np.ndarray]:
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
