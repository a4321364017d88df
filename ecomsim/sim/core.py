"""The batched simulation core: ``num_envs`` shopping sessions in arrays, stepped at once.

Both env views (``ecomsim.envs``) are thin layers over :class:`SimulationCore`; the
single env is a core of one session, so the two cannot disagree. Its arrays are the
blocks of ``ecomsim.sim.state`` (one table: shapes, dtypes, units), built here once and
rebuilt only when the catalog changes (:meth:`SimulationCore.set_catalog`); candidates
come from ``ecomsim.sim.retrieval``, observations from ``ecomsim.sim.observation``.

**Randomness.** Every draw comes from the session's own counter-based stream
(``ecomsim.sim.streams``), keyed from the env's ``np_random``; a fixed number of numbers is
drawn per step, so sessions never influence each other.

**Execution.** The step runs as compiled loops over the sessions
(``ecomsim.sim.kernels``): each computes one session's row from that session's state
only, so sub-env ``i`` of a vector env equals a single env bit for bit. The numpy
definitions they follow are in ``tests/sim/test_kernels.py``.

**Stock** (``EnvConfig.inventory``; the rules in ``ecomsim.sim.stock``). A core can be
handed a :class:`~ecomsim.sim.stock.StockKeeper`, the store every session of the core
shops in: its ``stock`` array is the core's ``item_table.stock``, and the step takes the
units its sessions buy, rows in order. Then sessions share one resource, and sub-env
``i`` no longer equals a single env. The core calls the keeper around every step
(``before_step``: the store's clock, deliveries and other shoppers; ``after_step``: the
step's sales and lost sales) and at a reset that keys every session (``restart``).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ecomsim.catalog import Catalog
from ecomsim.catalog_source import CatalogSupport
from ecomsim.config import CHANNELS, REWARDS, EnvConfig
from ecomsim.shoppers.base import Reaction, ShopperModel
from ecomsim.shoppers.population import SEGMENTS, ShopperPopulation
from ecomsim.sim import kernels, retrieval
from ecomsim.sim.observation import ItemRanges, ObservationLayout, item_features
from ecomsim.sim.state import ITEM_TABLE, OUTCOME, SESSION, Block, Portraits, SimState, sizes
from ecomsim.sim.stock import StockKeeper, candidate_mask
from ecomsim.sim.streams import SessionStreams


@dataclass
class StepOutcome:
    """Raw outcome of one core step, all batch-first, and the next observation.

    ``items`` is ``(N, k)`` with ``-1`` for empty slots (repeated picks, skipped
    sessions); the bool arrays are ``(N, k)``; ``clicks`` / ``carts`` / ``purchases``
    count them per session; ``revenue`` is currency units this step; ``obs`` the
    ``(N, obs_dim)`` float32 observation after the step (``None`` when not asked for);
    ``extras`` what the shopper model reports besides (``ShopperModel.extras``: e.g. an
    ensemble's ``disagreement``, ``(N,)``), empty for the default models.
    With inventory, ``unavailable`` ``(N, k)`` bool marks items shown with no unit on hand and
    ``lost`` ``(N, k)`` bool the purchases that found none (``None`` without inventory).
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
    obs: np.ndarray | None
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)
    unavailable: np.ndarray | None = None
    lost: np.ndarray | None = None


class SimulationCore:
    """State and dynamics of ``num_envs`` sessions.

    Args:
        config: the env configuration.
        catalog: the items on offer.
        shopper: the shopper model (bound to this core's state here).
        num_envs: number of sessions stepped together.
        catalog_support: what every catalog this core may be given by :meth:`set_catalog`
            satisfies (``catalog="gan"``); ``None``: the catalog stays (the observation
            bounds then come from its own values).
        stock: the store the sessions shop in (inventory on; see the module docstring);
            ``None``: every item in unlimited supply.

    Attributes:
        state: every array, by block (:class:`~ecomsim.sim.state.SimState`);
        session / portraits: its per-session blocks; layout: the observation layout.
    """

    def __init__(self, config: EnvConfig, catalog: Catalog, shopper: ShopperModel, num_envs: int,
                 catalog_support: CatalogSupport | None = None, stock: StockKeeper | None = None) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.config = config
        self.num_envs = n = int(num_envs)
        self.num_candidates = m = config.num_candidates
        self.slate_size = config.slate_size
        self._check_catalog(catalog)
        self.n_popular, self.n_personal = retrieval.candidate_mix(m, config.popular_share, config.personal_share)
        if stock is not None and stock.stock.shape != (catalog.num_items,):
            raise ValueError(f"stock must hold one count per catalog item ({catalog.num_items},), got {stock.stock.shape}")
        self.stock = stock
        self.state = st = SimState(n, m, self.slate_size)
        st.streams = SessionStreams(n)
        st.portraits = self.portraits = Portraits.empty(n, catalog.embed_dim)
        self._set_tables(catalog)
        ranges = ItemRanges.of_catalog(catalog) if catalog_support is None else \
            ItemRanges.of_support(catalog_support, catalog.num_items)
        st.layout = self.layout = ObservationLayout(catalog.category_names, catalog.embed_dim, m, ranges,
                                                    st.population.support(), inventory=stock is not None,
                                                    observe_profit=stock is not None and bool(stock.params[3]))
        st.session = self.session = SESSION.allocate(self._sizes(catalog))
        self._no_skip = np.zeros(n, dtype=bool)
        self._positions = np.arange(self.slate_size, dtype=np.float64)
        stocked = stock is not None
        self._outcome = OUTCOME.shapes({"num_envs": n, "slate_size": self.slate_size, "stocked_envs": n if stocked else 0,
                                        "stocked_slots": self.slate_size if stocked else 0})  # allocated every step
        self.shopper = shopper
        # with inventory a model whose update takes ``unavailable`` hears which shown items had no stock
        self._tell_stock = stock is not None and "unavailable" in inspect.signature(shopper.update).parameters
        shopper.bind(st)

    def _check_catalog(self, catalog: Catalog) -> None:
        if catalog.num_items < self.num_candidates:
            raise ValueError(f"catalog has {catalog.num_items} items, fewer than num_candidates={self.num_candidates}")

    def _sizes(self, catalog: Catalog) -> dict[str, int]:
        pool = retrieval.pool_size(self.n_personal, catalog.num_items)
        return sizes(self.num_envs, self.num_candidates, self.slate_size, catalog.num_items, catalog.num_categories,
                     catalog.embed_dim, pool, len(self.layout.item_names))

    def _set_tables(self, catalog: Catalog) -> None:
        """The catalog-derived state: item table, retrieval tables, consts, population."""
        st = self.state
        st.catalog = self.catalog = catalog
        st.population = self.population = ShopperPopulation(catalog, self.config.channel)
        emb = catalog.embedding.astype(np.float64)
        # unit-norm embeddings: affinities are cosines in [-1, 1] whatever the catalog's scale
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        st.item_table = Block(ITEM_TABLE, {
            "price": catalog.price, "log_price": np.log(catalog.price), "quality": catalog.quality,
            "category": np.ascontiguousarray(catalog.category, dtype=np.int64), "emb": emb,
            "features": item_features(catalog, emb),
            **self._stock_fields(),
        })
        st.retrieval = retrieval.build_tables(catalog, emb, retrieval.pool_size(self.n_personal, catalog.num_items))
        st.consts = (len(SEGMENTS), len(CHANNELS), self.n_popular, self.n_personal, catalog.num_items,
                     REWARDS.index(self.config.reward), self.config.max_steps)

    def _stock_fields(self) -> dict[str, np.ndarray]:
        """The item table's store fields: the keeper's own arrays, or empty ones (inventory off)."""
        if self.stock is None:
            return {"stock": np.zeros(0, dtype=np.int64), "unit_profit": np.zeros(0), "stock_params": np.zeros(0)}
        return {"stock": self.stock.stock, "unit_profit": self.stock.unit_profit, "stock_params": self.stock.params}

    # ================================================================= catalog
    def set_catalog(self, catalog: Catalog) -> None:
        """Swap the catalog (``catalog="gan"`` envs do this at reset): rebuilds the item and retrieval tables.

        The random streams are kept, so unseeded resets still continue the old sequence;
        the shopper model is re-bound. All sessions must be ``reset`` afterwards: their
        state referred to the old items. The observation layout does not change: the
        catalog needs the same category names and embedding dim, and values inside the
        observation bounds.
        """
        old = self.catalog
        if catalog.category_names != old.category_names or catalog.embed_dim != old.embed_dim:
            raise ValueError(
                "set_catalog needs the same category names and embedding dim as the env's spaces: expected "
                f"{list(old.category_names)} and embed_dim={old.embed_dim}, got {list(catalog.category_names)} "
                f"and embed_dim={catalog.embed_dim}"
            )
        self._check_catalog(catalog)
        if self.stock is not None:
            raise ValueError("set_catalog: a core with inventory keeps its catalog (the store stocks its items)")
        outside = self.layout.item_ranges.outside(ItemRanges.of_catalog(catalog))
        if outside is not None:
            raise ValueError(f"set_catalog: the catalog's {outside} (the observation bounds this env was built "
                             "with; see ecomsim.catalog_source.CatalogSupport)")
        pool = retrieval.pool_size(self.n_personal, catalog.num_items)
        if pool != self.session.pool.shape[1]:
            self.state.session = self.session = SESSION.allocate(self._sizes(catalog))
        self._set_tables(catalog)
        self.shopper.bind(self.state)

    # =================================================================== reset
    def reset(self, idx: np.ndarray, keys: np.ndarray | None = None, portraits: Portraits | None = None) -> None:
        """Start new sessions in rows ``idx``.

        Args:
            idx: the sessions, int64 ``(n,)``.
            keys: ``(n,)`` uint64 stream keys (``None``: derived from the finished streams).
            portraits: the shoppers of the new sessions (``n`` portraits the population could
                draw); ``None`` draws them from the streams.

        With inventory, a reset that gives keys to every session (a seeded reset, or the
        first) also restarts the store (``StockKeeper.restart``); other resets (autoresets,
        unseeded resets) keep its day and stock.
        """
        idx = np.asarray(idx, dtype=np.int64)
        if len(idx) == 0:
            return
        st = self.state
        if self.stock is not None and keys is not None and len(idx) == self.num_envs:
            self.stock.restart(np.asarray(keys, dtype=np.uint64))
        if keys is None:
            keys = st.streams.next_keys(idx)
        st.streams.set_keys(idx, keys)
        if portraits is None:
            portraits = st.population.sample(st.streams, idx)
        else:
            if len(portraits.segment) != len(idx):
                raise ValueError(f"portraits must hold one portrait per session, {len(idx)}, "
                                 f"got {len(portraits.segment)}")
            st.population.check(portraits)
        st.portraits.assign(idx, portraits)
        self.session.restart(idx)
        retrieval.draw_pools(st, idx, self.config.retrieval_noise)
        self.shopper.reset_sessions(idx)
        retrieval.retrieve(st, st.streams.uniform(2 * self.num_candidates + 2, idx), 0, idx)

    # ==================================================================== step
    def check_actions(self, actions: np.ndarray) -> np.ndarray:
        """Validate and return actions as ``(num_envs, slate_size)`` int64 candidate indexes.

        What the batched action space contains, and nothing else: integers (any numpy integer dtype) of shape
        ``(num_envs,)`` in recommend mode or ``(num_envs, slate_size)`` in slate mode; floats (``3.0``
        included), bools and other shapes (``(num_envs, 1)``) are refused, never rounded or reshaped.
        """
        n, k, m = self.num_envs, self.slate_size, self.num_candidates
        recommend = self.config.mode == "recommend"
        expected, named = ((n,), f"(num_envs={n},)") if recommend else ((n, k), f"(num_envs={n}, slate_size={k})")
        try:
            arr = np.asarray(actions)
        except (ValueError, TypeError):  # ragged nested sequences
            raise ValueError(f"actions must be an integer array of shape {named}, got {type(actions).__name__} "
                             "of ragged rows") from None
        if arr.shape != expected:
            raise ValueError(f"actions must have shape {named}, got {arr.shape}")
        if arr.dtype.kind not in "iu":
            raise TypeError(f"actions must be integer candidate indexes in [0, {m - 1}], got dtype {arr.dtype}")
        bad = (arr < 0) | (arr >= m)
        if bad.any():
            raise ValueError(f"actions must be candidate indexes in [0, {m - 1}], got {arr[bad].ravel()[:5].tolist()}")
        return arr.reshape(n, k).astype(np.int64, copy=False)

    def step(self, slots: np.ndarray, skip: np.ndarray | None = None, observe: bool = True) -> StepOutcome:
        """Show the candidates at ``slots`` ``(N, k)`` int64 to every session and sample the outcomes.

        Compiled passes over the sessions (``ecomsim.sim.kernels``) around the shopper model:
        ``gather`` the shown items, the model's ``reaction``, ``sample`` the funnel from
        the step's uniforms, the model's ``update``, ``advance`` the session state and
        retrieve the next candidates from the same uniforms, ``observe``. A model with a
        ``fused_step`` (the DNN) does all of it with the same row functions around its forward.

        Args:
            slots: the candidate indexes shown, checked (:meth:`check_actions`).
            skip: ``(N,)`` bool sessions left as they are (nothing shown, zero outcomes, no
                draws) and only observed: a vector env's NEXT_STEP autoreset restarts its
                sessions with :meth:`reset` first and skips them.
            observe: put the next observation in the outcome (a fused step always does).
        """
        skip = self._no_skip if skip is None else skip
        # the outcome bundle is handed out (infos): fresh arrays every step, allocated without Block's checks
        (s0, d0), (s1, d1), (s2, d2), (s3, d3), (s4, d4), (s5, d5) = self._outcome
        out = (np.empty(s0, d0), np.empty(s1, d1), np.empty(s2, d2), np.empty(s3, d3), np.empty(s4, d4),
               np.empty(s5, d5))
        if self.stock is not None:
            self.stock.before_step()
        if self.shopper.fused_step is not None:
            obs = self.shopper.fused_step(slots, skip, out)
        else:
            obs = self._general_step(slots, skip, out, observe)
        items, flags, counts, money, ends, stock_flags = out
        outcome = StepOutcome(
            items=items if self.slate_size == 1 else np.where(flags[0], items, -1),
            shown=flags[0], clicked=flags[1], carted=flags[2], purchased=flags[3],
            clicks=counts[0], carts=counts[1], purchases=counts[2],
            revenue=money[0], reward=money[1], left=ends[0], terminated=ends[1], truncated=ends[2],
            obs=obs, extras=self.shopper.extras,
        )
        if self.stock is not None:
            outcome.unavailable, outcome.lost = stock_flags[0], stock_flags[1]
            stepped = self.num_envs if skip is self._no_skip else int(self.num_envs - np.count_nonzero(skip))
            self.stock.after_step(items, flags[3], stock_flags[1], stepped)
        return outcome

    def _general_step(self, slots: np.ndarray, skip: np.ndarray, out: tuple, observe: bool) -> np.ndarray | None:
        st = self.state
        items, flags = out[0], out[1]
        kernels.gather(skip, slots, st.session.bundle, out)
        r = self.shopper.reaction(items, self._positions)
        kernels.sample(skip, (r.click, r.cart, r.purchase, r.leave), st.session.bundle, st.streams.rng.bundle,
                       st.item_table.bundle, out)
        extra = {"unavailable": out[5][0]} if self._tell_stock else {}
        if skip is self._no_skip or not skip.any():
            self.shopper.update(items, flags[0], flags[1], flags[2], flags[3], **extra)
        else:
            rows = np.flatnonzero(~skip)
            extra = {key: value[rows] for key, value in extra.items()}
            self.shopper.update(items[rows], *(f[rows] for f in flags), rows=rows, **extra)
        kernels.advance(skip, st.session.bundle, st.item_table.bundle, st.retrieval.bundle, st.consts, out)
        return self.layout.observe(st) if observe else None

    def gather(self, slots: np.ndarray, skip: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """What :meth:`step` would show for ``slots``, without stepping: ``(items, shown)``, both ``(N, k)``.

        ``items`` are the candidates at ``slots`` (int64); ``shown`` is False for a later copy of a
        candidate picked twice (shown in its first slot only) and for sessions ``skip`` (their items
        are -1). The state is only read (explanations of a step are computed from it before the step).
        """
        skip = self._no_skip if skip is None else skip
        (s0, d0), (s1, d1), (s2, d2), (s3, d3), (s4, d4), (s5, d5) = self._outcome
        out = (np.empty(s0, d0), np.zeros(s1, d1), np.empty(s2, d2), np.empty(s3, d3), np.empty(s4, d4),
               np.zeros(s5, d5))
        kernels.gather(skip, np.ascontiguousarray(slots, dtype=np.int64), self.session.bundle, out)
        return out[0], out[1][0]

    # ============================================================ observation
    @property
    def candidates(self) -> np.ndarray:
        """``(num_envs, num_candidates)`` int64 item ids on offer at the next step."""
        return self.session.candidates

    @property
    def step_count(self) -> np.ndarray:
        """``(num_envs,)`` int64 steps taken in each session."""
        return self.session.step_count

    def candidate_reaction(self) -> Reaction:
        """Shopper-model probabilities for every candidate shown alone in the top slot.

        This is what a myopic oracle (the greedy baseline) ranks by; pure, no state change.
        """
        return self.shopper.reaction(self.session.candidates, np.zeros(self.num_candidates))

    def action_masks(self, rows: np.ndarray | None = None) -> np.ndarray:
        """``(n, slate_size * num_candidates)`` bool: candidates in stock now (``ecomsim.sim.stock.candidate_mask``).

        Without inventory every candidate is allowed. ``rows``: the sessions (all when None).
        """
        cand = self.session.candidates if rows is None else self.session.candidates[rows]
        if self.stock is None:
            return np.ones((cand.shape[0], self.slate_size * self.num_candidates), dtype=bool)
        return candidate_mask(cand, self.stock.stock, self.slate_size)

    def observe(self, rows: np.ndarray | None = None) -> np.ndarray:
        """``(len(rows), obs_dim)`` float32 observations of sessions ``rows`` (all when None); see ``layout``."""
        return self.layout.observe(self.state, rows)
