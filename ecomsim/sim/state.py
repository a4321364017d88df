"""The simulator's state, named once: every array a core holds, its shape, dtype and unit.

The arrays come in *blocks*. Each block is declared below as a :class:`BlockSpec`, the
table the code allocates from, and reaches the compiled kernels (``ecomsim.sim.kernels``)
as one *bundle*: a plain tuple of its arrays in declaration order, which a kernel
unpacks into named locals on its first line (``tests/sim/test_state.py`` checks every
such line against these declarations). Sizes: ``N`` sessions (``num_envs``), ``M``
candidates, ``k`` slate size, ``I`` items, ``C`` categories, ``d`` embedding dim,
``P`` personal pool, ``H = HISTORY * k``, ``D = 3k + 1 + 2M + 2`` draws per step,
``Q`` popular pool, ``B`` popular buckets, ``A`` anchors.

============ ==================== =============== ======== ==============================================
block        field                shape           dtype    unit, meaning
============ ==================== =============== ======== ==============================================
session      counters             (6, N)          int64    rows: step_count (steps taken), clicks, carts,
                                                           purchases (items), impressions (items shown),
                                                           no_click_run (steps since the last click)
session      revenue              (N,)            float64  currency units bought this session
session      last_clicked         (N,)            bool     the last step had a click
session      bought               (N, C)          bool     category bought this session
session      recent               (N, H)          int64    items shown in the last HISTORY steps, newest
                                                           first, -1 for none
session      candidates           (N, M)          int64    item ids on offer at the next step
session      pool                 (N, P)          int64    the session's personalised retrieval pool
session      uniforms             (N, D)          float64  scratch: the step's uniforms in [0, 1)
portrait     segment              (N,)            int64    index into ``SEGMENTS``
portrait     channel              (N,)            int64    index into ``CHANNELS`` (app, web, social)
portrait     interest             (N, d)          float64  profile interest, unit norm
portrait     price_sensitivity    (N,)            float64  > 0, scales how price over budget hurts
portrait     budget               (N,)            float64  comfortable spend per item, currency units
portrait     patience             (N,)            float64  initial patience, steps of tolerance
portrait     intent               (N,)            float64  initial purchase intent, logit offset
rng          key, base, counter   (N,) each       uint64   stream key, ``mix64(key)``, numbers drawn
item_table   price                (I,)            float64  currency units
item_table   log_price            (I,)            float64  log currency units
item_table   quality              (I,)            float64  rating in [0, 1]
item_table   category             (I,)            int64    index into the catalog's category names
item_table   emb                  (I, d)          float64  unit-norm embedding (affinities are cosines)
item_table   features             (I, F)          float32  static candidate features (``observation``)
item_table   stock                (S,)            int64    units on hand per item, the store's own array
                                                           (``S = I`` with inventory, else 0); the step
                                                           takes the units its sessions buy, rows in order
item_table   unit_profit          (S,)            float64  ``reward="profit"``: currency units one unit
                                                           bought is worth (set by the store each day)
item_table   stock_params         (SP,)           float64  ``ecomsim.sim.stock.STOCK_PARAMS`` (``SP = 4``
                                                           with inventory, else 0)
retrieval    popular_items        (Q,)            int64    the Q most popular items, most popular first
retrieval    popular_cdf          (Q,)            float64  their normalised cumulative popularity
retrieval    popular_low          (B,)            int64    bucket table of the popular draw
retrieval    popular_exact        (B,)            bool     bucket gives the draw without a search
retrieval    anchors              (A, d)          float64  anchor directions of the pool index
retrieval    anchor_pools         (A, P)          int64    each anchor's P items of highest affinity
retrieval    mark                 (I + 1,)        int64    scratch item marker (``kernels.next_stamp``)
tracker      session_interest     (N, d)          float64  DNN session interest (drifts to clicks)
tracker      aggregates           (4, N)          float64  rows: click_quality, irr_sum, irr_ewma, rep_ewma
tracker      member               (N_m,)          int64    the session's ensemble member (``N_m = N`` with
                                                           ``shopper_sampling="per_session"``, else 0: empty)
outcome      items                (N, k)          int64    items shown this step, -1 for empty slots
outcome      flags                (4, N, k)       bool     rows: shown, clicked, carted, purchased
outcome      counts               (3, N)          int64    rows: clicks, carts, purchases this step
outcome      money                (2, N)          float64  rows: revenue (currency units), reward
outcome      ends                 (3, N)          bool     rows: left, terminated, truncated
outcome      stock_flags          (2, NS, kS)     bool     rows: unavailable (shown with no unit on hand),
                                                           lost (bought by the draws, no unit: a lost sale);
                                                           ``NS, kS = N, k`` with inventory, else 0
consts       (7 ints)             ()              int64    num_segments, num_channels, n_popular,
                                                           n_personal, num_items, reward_kind, max_steps
============ ==================== =============== ======== ==============================================

The store's fields (``stock``, ``unit_profit``, ``stock_params``, ``stock_flags``) are the
"Growing the state" rule at work: sized 0 when inventory is off (``EnvConfig.inventory``),
so the kernels' signatures are the same either way and they test ``stock.shape[0] > 0``.
``stock`` is not a copy: it is row 0 of the store's :class:`~ecomsim.store.state.StoreState`
stock, so the store and the step kernels read and write one array.

Who writes what. The core owns ``session``, ``portrait``, ``rng`` (through
``SessionStreams``), ``item_table``, ``retrieval`` and ``consts``: ``reset`` fills a
session's rows, the step kernels advance them, ``set_catalog`` rebuilds ``item_table``,
``retrieval`` and ``consts``. ``tracker`` belongs to the DNN behaviour model (allocated
at its ``bind``). ``outcome`` is fresh every step: it is handed out in infos. A shopper
model reads any block through :class:`SimState` and writes only its own (the contract
of ``ecomsim.shoppers.base``). Arrays are written in place, never rebound: kernels and
models hold the bundles.

Growing the state. A new per-session quantity is a new field of ``session`` (a reset
writes its ``fill``: ``Block.restart``); a new per-item one (a store's stock) a field of
``item_table``, rebuilt with the catalog. The bundle grows and only the kernels that unpack
it change, never their call sites. A field or block for a world option that is off is
allocated with ``enabled=False``: every symbolic size becomes 0, so dtypes and ranks, and
with them the kernels' signatures and numba's cache, stay the same; a kernel tests
``x.shape[0] == 0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

if TYPE_CHECKING:
    from ecomsim.catalog import Catalog
    from ecomsim.shoppers.population import ShopperPopulation
    from ecomsim.sim.observation import ObservationLayout
    from ecomsim.sim.streams import SessionStreams

HISTORY = 10  # steps of shown items remembered for repeat counts


@dataclass(frozen=True)
class Field:
    """One array of a block: ``shape`` holds ints and size names (``"num_envs"``, ...)."""

    name: str
    shape: tuple[int | str, ...]
    dtype: type
    fill: Any  # the value it is allocated with, and a session's value after ``Block.restart``
    meaning: str
    rows: tuple[str, ...] = ()  # names of the rows of a stacked field (its first axis)
    restart: bool = True  # ``Block.restart`` writes ``fill`` (False: set otherwise, e.g. by retrieval)


@dataclass(frozen=True)
class BlockSpec:
    """A declared block: its fields in bundle order."""

    name: str
    fields: tuple[Field, ...]

    def __post_init__(self) -> None:
        # what Block checks and indexes with, worked out once (a reset builds and assigns blocks)
        object.__setattr__(self, "names", tuple(f.name for f in self.fields))
        object.__setattr__(self, "_name_set", frozenset(self.names))
        object.__setattr__(self, "_checks", tuple((f.name, np.dtype(f.dtype), len(f.shape), f.rows) for f in self.fields))
        object.__setattr__(self, "_session_index", tuple(
            (slice(None),) * f.shape.index("num_envs") if "num_envs" in f.shape else None for f in self.fields))

    def _restart_plan(self, bundle: tuple) -> list[tuple[np.ndarray, tuple, Any]]:
        """What ``Block.restart`` writes: (array, index in front of the session axis, fill)."""
        return [(a, lead, f.fill) for a, lead, f in zip(bundle, self._session_index, self.fields)
                if f.restart and lead is not None]

    def shapes(self, sizes: Mapping[str, int], enabled: bool = True) -> list[tuple[tuple[int, ...], type]]:
        """``(shape, dtype)`` of each field for these sizes (every size 0 when not ``enabled``)."""
        return [(tuple(s if isinstance(s, int) else (sizes[s] if enabled else 0) for s in f.shape), f.dtype)
                for f in self.fields]

    def nbytes(self, sizes: Mapping[str, int], enabled: bool = True) -> int:
        """Bytes the block's arrays take for these sizes (what :meth:`allocate` would allocate; the memory estimate)."""
        return sum(int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
                   for shape, dtype in self.shapes(sizes, enabled))

    def allocate(self, sizes: Mapping[str, int], enabled: bool = True) -> "Block":
        """Arrays of the declared shapes filled with each field's ``fill``; all sizes 0 when not ``enabled``."""
        return Block(self, {f.name: np.full(shape, f.fill, dtype=dtype)
                            for f, (shape, dtype) in zip(self.fields, self.shapes(sizes, enabled))})


def _f(name, shape, dtype, fill, meaning, rows=(), restart=True) -> Field:
    return Field(name, tuple(shape), dtype, fill, meaning, tuple(rows), restart)


SESSION = BlockSpec("session", (
    _f("counters", (6, "num_envs"), np.int64, 0, "per-session counts",
       ("step_count", "clicks", "carts", "purchases", "impressions", "no_click_run")),
    _f("revenue", ("num_envs",), np.float64, 0.0, "currency units bought this session"),
    _f("last_clicked", ("num_envs",), np.bool_, False, "the last step had a click"),
    _f("bought", ("num_envs", "num_categories"), np.bool_, False, "category bought this session"),
    _f("recent", ("num_envs", "history"), np.int64, -1, "items shown in the last HISTORY steps, newest first"),
    _f("candidates", ("num_envs", "num_candidates"), np.int64, 0, "item ids on offer at the next step", restart=False),
    _f("pool", ("num_envs", "pool_size"), np.int64, 0, "personalised retrieval pool", restart=False),
    _f("uniforms", ("num_envs", "draws"), np.float64, 0.0, "scratch: the step's uniforms", restart=False),
))
PORTRAIT = BlockSpec("portrait", (
    _f("segment", ("num_envs",), np.int64, 0, "index into SEGMENTS"),
    _f("channel", ("num_envs",), np.int64, 0, "index into CHANNELS"),
    _f("interest", ("num_envs", "embed_dim"), np.float64, 0.0, "profile interest, unit norm"),
    _f("price_sensitivity", ("num_envs",), np.float64, 1.0, "> 0, scales how price over budget hurts"),
    _f("budget", ("num_envs",), np.float64, 1.0, "comfortable spend per item, currency units"),
    _f("patience", ("num_envs",), np.float64, 1.0, "initial patience, steps of tolerance"),
    _f("intent", ("num_envs",), np.float64, 0.0, "initial purchase intent, logit offset"),
))
RNG = BlockSpec("rng", (
    _f("key", ("num_envs",), np.uint64, 0, "stream key"),
    _f("base", ("num_envs",), np.uint64, 0, "mix64(key), the stream's starting state"),
    _f("counter", ("num_envs",), np.uint64, 0, "numbers drawn so far"),
))
ITEM_TABLE = BlockSpec("item_table", (
    _f("price", ("num_items",), np.float64, 1.0, "currency units"),
    _f("log_price", ("num_items",), np.float64, 0.0, "log currency units"),
    _f("quality", ("num_items",), np.float64, 0.0, "rating in [0, 1]"),
    _f("category", ("num_items",), np.int64, 0, "index into the catalog's category names"),
    _f("emb", ("num_items", "embed_dim"), np.float64, 0.0, "unit-norm embedding"),
    _f("features", ("num_items", "item_features"), np.float32, 0.0, "static candidate features"),
    _f("stock", ("stocked_items",), np.int64, 0, "units on hand (the store's array; 0 items without inventory)"),
    _f("unit_profit", ("stocked_items",), np.float64, 0.0, "reward='profit' value of one unit bought"),
    _f("stock_params", ("stock_params",), np.float64, 0.0, "ecomsim.sim.stock.STOCK_PARAMS"),
))
RETRIEVAL = BlockSpec("retrieval", (
    _f("popular_items", ("popular_pool",), np.int64, 0, "most popular items, most popular first"),
    _f("popular_cdf", ("popular_pool",), np.float64, 0.0, "their normalised cumulative popularity"),
    _f("popular_low", ("buckets",), np.int64, 0, "bucket table of the popular draw"),
    _f("popular_exact", ("buckets",), np.bool_, False, "bucket gives the draw without a search"),
    _f("anchors", ("anchors", "embed_dim"), np.float64, 0.0, "anchor directions of the pool index"),
    _f("anchor_pools", ("anchors", "pool_size"), np.int64, 0, "each anchor's items of highest affinity"),
    _f("mark", ("marks",), np.int64, -1, "scratch item marker (num_items + 1; the last entry is the stamp)"),
))
TRACKER = BlockSpec("tracker", (
    _f("session_interest", ("num_envs", "embed_dim"), np.float64, 0.0, "DNN session interest"),
    _f("aggregates", (4, "num_envs"), np.float64, 0.0, "DNN tracker running sums",
       ("click_quality", "irr_sum", "irr_ewma", "rep_ewma")),
    # sized "member_rows": num_envs when an ensemble draws a member per session, else 0 (the kernels then use
    # network 0): the field exists either way, so the kernels' signatures and numba's cache stay the same
    _f("member", ("member_rows",), np.int64, 0, "the session's ensemble member", restart=False),
))
OUTCOME = BlockSpec("outcome", (
    _f("items", ("num_envs", "slate_size"), np.int64, -1, "items shown, -1 for empty slots"),
    _f("flags", (4, "num_envs", "slate_size"), np.bool_, False, "per slot", ("shown", "clicked", "carted", "purchased")),
    _f("counts", (3, "num_envs"), np.int64, 0, "this step", ("clicks", "carts", "purchases")),
    _f("money", (2, "num_envs"), np.float64, 0.0, "this step", ("revenue", "reward")),
    _f("ends", (3, "num_envs"), np.bool_, False, "after this step", ("left", "terminated", "truncated")),
    _f("stock_flags", (2, "stocked_envs", "stocked_slots"), np.bool_, False, "per slot, inventory only",
       ("unavailable", "lost")),
))
#: the ``consts`` bundle: a tuple of ints in this order
CONSTS = ("num_segments", "num_channels", "n_popular", "n_personal", "num_items", "reward_kind", "max_steps")
#: every block the kernels take, by the parameter name they take it under
BUNDLES = {spec.name: spec for spec in (SESSION, PORTRAIT, RNG, ITEM_TABLE, RETRIEVAL, TRACKER, OUTCOME)}


class Block:
    """The arrays of one block: attributes by field (and row) name; ``bundle``, the tuple the kernels take.

    Arrays are never rebound (``block.x = y`` raises): write into them (``block.x[rows] = v``).
    """

    def __init__(self, spec: BlockSpec, arrays: Mapping[str, np.ndarray]) -> None:
        if arrays.keys() != spec._name_set:
            raise ValueError(f"{spec.name} block needs the arrays {list(spec.names)}, got {sorted(arrays)}")
        fields = self.__dict__  # written directly: __setattr__ refuses rebinding
        for name, dtype, rank, rows in spec._checks:
            a = arrays[name]
            if type(a) is not np.ndarray or a.dtype != dtype or a.ndim != rank:
                got = f"{a.dtype} array of shape {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
                raise ValueError(f"{spec.name}.{name} must be a {dtype} array of rank {rank}, got a {got}")
            fields[name] = a
            if rows:
                for j, row in enumerate(rows):
                    fields[row] = a[j]
        fields["spec"] = spec
        fields["bundle"] = tuple([arrays[name] for name in spec.names])

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{self.spec.name}.{name} is written in place (x[...] = v), never rebound: "
                             "the kernels hold the block's arrays")

    def arrays(self) -> dict[str, np.ndarray]:
        """The fields by name (the arrays themselves, not copies)."""
        return dict(zip(self.spec.names, self.bundle))

    def take(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """Copies of the sessions ``idx`` of every field (each field must have a ``num_envs`` axis)."""
        return {name: a[lead + (idx,)] for name, a, lead in zip(self.spec.names, self.bundle, self.spec._session_index)}

    def assign(self, idx: np.ndarray, other: "Block") -> None:
        """Write ``other`` (``len(idx)`` sessions of the same spec) into the sessions ``idx``."""
        for dst, src, lead in zip(self.bundle, other.bundle, self.spec._session_index):
            dst[lead + (idx,)] = src

    def restart(self, idx: np.ndarray) -> None:
        """Sessions ``idx`` back to each field's ``fill`` (the fields marked ``restart``)."""
        for dst, lead, fill in self.spec._restart_plan(self.bundle):
            dst[lead + (idx,)] = fill


class Portraits(Block):
    """Portraits of ``N`` shoppers (fields of ``PORTRAIT``), e.g. drawn by ``ShopperPopulation.sample``
    or given to ``SimulationCore.reset``."""

    def __init__(self, **arrays: np.ndarray) -> None:
        super().__init__(PORTRAIT, arrays)

    @classmethod
    def empty(cls, num_envs: int, embed_dim: int) -> "Portraits":
        return cls(**PORTRAIT.allocate({"num_envs": num_envs, "embed_dim": embed_dim}).arrays())

    def take(self, idx: np.ndarray) -> "Portraits":
        return Portraits(**super().take(idx))


def sizes(num_envs: int, num_candidates: int, slate_size: int, num_items: int, num_categories: int, embed_dim: int,
          pool_size: int, item_features: int) -> dict[str, int]:
    """The symbolic sizes of the table for one core (of a catalog of ``num_items`` items, ``num_categories``
    categories and ``embed_dim``-dimensional embeddings)."""
    return {"num_envs": num_envs, "num_candidates": num_candidates, "slate_size": slate_size,
            "num_items": num_items, "num_categories": num_categories,
            "embed_dim": embed_dim, "history": HISTORY * slate_size, "pool_size": pool_size,
            "draws": 3 * slate_size + 1 + 2 * num_candidates + 2, "item_features": item_features}


class SimState:
    """Every array of one core, by block (the table above); what shopper models are bound to.

    Attributes:
        num_envs, num_candidates, slate_size: the batch and step sizes; ``all_rows``: ``arange(num_envs)``.
        catalog: the items on offer; ``population``: who shops (draws ``portraits``).
        session, portraits, item_table, retrieval: blocks of the table; ``streams`` holds ``rng``.
        consts: the ``CONSTS`` tuple; ``layout``: the observation layout (feature names and bounds).
    """

    session: Block
    portraits: Portraits
    streams: "SessionStreams"
    item_table: Block
    retrieval: Block
    consts: tuple[int, ...]
    catalog: "Catalog"
    population: "ShopperPopulation"
    layout: "ObservationLayout"

    def __init__(self, num_envs: int, num_candidates: int, slate_size: int) -> None:
        self.num_envs, self.num_candidates, self.slate_size = num_envs, num_candidates, slate_size
        self.all_rows = np.arange(num_envs)  # (N,) int64, every session

    def repeat_counts(self, items: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """``(n, k)`` times each of ``items`` was shown in the session's last ``HISTORY`` steps."""
        recent = self.session.recent if rows is None else self.session.recent[rows]
        return (items[:, :, None] == recent[:, None, :]).sum(axis=2)

    def category_bought(self, items: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """``(n, k)`` 1.0 where the item's category was bought this session."""
        bought = self.session.bought if rows is None else self.session.bought[rows]
        cats = self.item_table.category[items]
        return bought[np.arange(items.shape[0])[:, None], cats].astype(np.float64)

