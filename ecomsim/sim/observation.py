"""The flat observation: every feature's name, bounds and definition, in write order, in one table.

``FEATURES`` below is the layout; :class:`ObservationLayout` expands it for one env
(names, the ``Box``), :func:`item_features` writes its static ``item`` part once per
catalog, and ``kernels._observe_row`` writes a session's row in the same order
(``tests/sim/test_kernels.py`` rebuilds every feature from its definition, by name, and
compares). A row is::

    portrait (segment, channel, interest, log_budget, price_sensitivity)
    session  (step_frac, clicks, carts, purchases, no_click_run, last_clicked, bought_<category>)
    num_candidates x [item (cat_<category>, log_price_z, quality, rel_popularity, emb_<j>)
                      candidate (seen, affinity, log_price_over_budget, category_bought
                                 [, out_of_stock, low_stock]: with inventory only
                                 [, unit_profit_share]: with inventory's observe_profit only)]

A feature with an ``option`` is in the layout only when that world option is on
(``inventory``: the stock state of each candidate, ``ecomsim.sim.stock``;
``observe_profit``: what a unit bought is worth to the store), so the default
layout is the one it always was.

Bounds are finite and honest: fixed where the definition bounds the value (one-hots,
flags, ``x / (1 + x)`` counts, cosines, unit-norm components); else derived from what
the env can produce: the population's support (budget, price sensitivity: ``z`` of its
normal draws is within ``streams.NORMAL_BOUND``) and the catalogs the env can hold (the
catalog's own values when it is fixed; for ``catalog="gan"`` the generator's support,
``ecomsim.catalog_source.CatalogSupport``, and for the standardised log price Samuelson's
inequality, ``|z| <= sqrt(num_items - 1)`` for any catalog). Bounds are rounded outward
to float32, so the float32 values always lie inside.

Observations are fresh arrays (not a reused buffer): callers keep them (replay buffers,
trajectories) without copying.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

import numpy as np
from gymnasium import spaces

from ecomsim.catalog import Catalog
from ecomsim.config import CHANNELS
from ecomsim.shoppers.population import SEGMENTS
from ecomsim.sim import kernels
from ecomsim.sim.state import SimState

if TYPE_CHECKING:
    from ecomsim.catalog_source import CatalogSupport

UNIT, SIGNED = (0.0, 1.0), (-1.0, 1.0)


@dataclass(frozen=True)
class Feature:
    """One row of the layout: ``name`` (``"{}"`` repeated over ``over``), bounds (a pair, or the name of a
    derived range) and what ``kernels._observe_row`` writes."""

    part: str
    name: str
    over: str | None
    bounds: tuple[float, float] | str
    definition: str
    option: str | None = None  # the world option that adds this feature (None: always there)


FEATURES = (
    Feature("portrait", "segment_{}", "segments", UNIT, "one-hot of the shopper's segment"),
    Feature("portrait", "channel_{}", "channels", UNIT, "one-hot of the session's channel"),
    Feature("portrait", "interest_{}", "embed_dim", SIGNED, "profile interest (unit norm)"),
    Feature("portrait", "log_budget", None, "log_budget", "log(budget / 150), budget in currency units"),
    Feature("portrait", "price_sensitivity", None, "price_sensitivity", "the portrait's price sensitivity"),
    Feature("session", "step_frac", None, UNIT, "step_count / max_steps (float32)"),
    Feature("session", "clicks", None, UNIT, "x / (1 + x) of the items clicked this session"),
    Feature("session", "carts", None, UNIT, "x / (1 + x) of the items carted this session"),
    Feature("session", "purchases", None, UNIT, "x / (1 + x) of the items bought this session"),
    Feature("session", "no_click_run", None, UNIT, "x / (1 + x) of the steps since the last click"),
    Feature("session", "last_clicked", None, UNIT, "1 if the last step had a click"),
    Feature("session", "bought_{}", "categories", UNIT, "1 if the category was bought this session"),
    Feature("item", "cat_{}", "categories", UNIT, "one-hot of the item's category"),
    Feature("item", "log_price_z", None, "log_price_z", "log price standardised over the catalog"),
    Feature("item", "quality", None, UNIT, "the item's rating"),
    Feature("item", "rel_popularity", None, "rel_popularity", "log(popularity * num_items) / 3"),
    Feature("item", "emb_{}", "embed_dim", SIGNED, "the item's unit-norm embedding"),
    Feature("candidate", "seen", None, UNIT, "1 if shown in the last HISTORY steps"),
    Feature("candidate", "affinity", None, SIGNED, "cosine of the profile interest and the embedding"),
    Feature("candidate", "log_price_over_budget", None, "log_price_over_budget", "log(price / budget)"),
    Feature("candidate", "category_bought", None, UNIT, "1 if the item's category was bought this session"),
    Feature("candidate", "out_of_stock", None, UNIT, "1 if the item has no unit on hand", "inventory"),
    Feature("candidate", "low_stock", None, UNIT, "1 if it has 1 to low_stock_units units ('only n left')",
            "inventory"),
    Feature("candidate", "unit_profit_share", None, UNIT,
            "x / (1 + x), x = unit_profit / price: what a unit bought is worth to the store over its price",
            "observe_profit"),
)
OPTIONS = ("inventory", "observe_profit")  # the world options that add features


def feature_counts(num_categories: int, embed_dim: int, inventory: bool = False,
                   observe_profit: bool = False) -> dict[str, int]:
    """Features per part of ``FEATURES`` (``portrait``, ``session``, ``item``, ``candidate``) for a catalog of
    ``num_categories`` categories and ``embed_dim``-dimensional embeddings (what :class:`ObservationLayout` names);
    ``inventory``: with the stock features; ``observe_profit``: with ``unit_profit_share`` too."""
    over = {"segments": len(SEGMENTS), "channels": len(CHANNELS), "categories": num_categories, "embed_dim": embed_dim}
    counts = dict.fromkeys(("portrait", "session", "item", "candidate"), 0)
    on = _options(inventory, observe_profit)
    for f in FEATURES:
        if f.option is not None and f.option not in on:
            continue
        counts[f.part] += 1 if f.over is None else over[f.over]
    return counts


def _options(inventory: bool, observe_profit: bool) -> frozenset[str]:
    if observe_profit and not inventory:
        raise ValueError("observe_profit needs inventory (the feature is a stock feature)")
    return frozenset(name for name, on in (("inventory", inventory), ("observe_profit", observe_profit)) if on)


def item_features(catalog: Catalog, emb: np.ndarray) -> np.ndarray:
    """``(I, F)`` float32 static ``item`` features of ``catalog`` (``emb``: its unit-norm embeddings)."""
    log_price = np.log(catalog.price)
    z, rel = _standardised(log_price), np.log(catalog.popularity * catalog.num_items)
    c = catalog.num_categories
    out = np.zeros((catalog.num_items, c + 3 + emb.shape[1]), dtype=np.float32)
    out[np.arange(catalog.num_items), catalog.category] = 1.0
    out[:, c] = z
    out[:, c + 1] = catalog.quality
    out[:, c + 2] = rel / 3.0
    out[:, c + 3 :] = emb
    return out


def _standardised(log_price: np.ndarray) -> np.ndarray:
    return (log_price - float(log_price.mean())) / (float(log_price.std()) or 1.0)


@dataclass(frozen=True)
class ItemRanges:
    """``(low, high)`` over every catalog an env can hold: ``log_price_z`` and ``rel_popularity`` (the features),
    ``log_price`` (log currency units)."""

    log_price_z: tuple[float, float]
    rel_popularity: tuple[float, float]
    log_price: tuple[float, float]

    @classmethod
    def of_catalog(cls, catalog: Catalog) -> "ItemRanges":
        """The ranges of one catalog's own values (a constant ``v`` gets ``[v - 1, v + 1]``, here and below)."""
        log_price = np.log(catalog.price)
        z, rel = _standardised(log_price), np.log(catalog.popularity * catalog.num_items) / 3.0
        return cls(_span(z), _span(rel), _span(log_price))

    @classmethod
    def of_support(cls, support: "CatalogSupport", num_items: int) -> "ItemRanges":
        """What every catalog of ``num_items`` items within ``support`` can hold: ``|z| <= sqrt(num_items - 1)``
        (Samuelson), and ``popularity * num_items`` between ``1 / ratio`` and ``min(num_items, ratio)``."""
        z = float(np.sqrt(num_items - 1))
        r = support.log_popularity_ratio
        return cls((-z, z), _widen(-r / 3.0, min(float(np.log(num_items)), r) / 3.0), _widen(*support.log_price))

    def outside(self, other: "ItemRanges") -> str | None:
        """The first range of ``other`` not inside this one, described; ``None`` when all are. The two features
        are compared as observed (float32, against the bounds rounded outward); log prices exactly."""
        for name in ("log_price_z", "rel_popularity", "log_price"):
            (lo, hi), (olo, ohi) = getattr(self, name), getattr(other, name)
            if name != "log_price":
                (lo, hi), olo, ohi = _outward(lo, hi), np.float32(olo), np.float32(ohi)
            if olo < lo or ohi > hi:
                return f"{name} spans [{olo:.6g}, {ohi:.6g}], outside [{lo:.6g}, {hi:.6g}]"
        return None


def _span(x: np.ndarray) -> tuple[float, float]:
    return _widen(float(x.min()), float(x.max()))


def _widen(lo: float, hi: float) -> tuple[float, float]:
    return (lo - 1.0, hi + 1.0) if lo == hi else (lo, hi)  # a constant value: a Box needs low < high


class ObservationLayout:
    """``FEATURES`` expanded for one env: names per part, the ``Box`` and the observation itself.

    Args:
        category_names: the catalog's categories; ``embed_dim``: its embedding size.
        num_candidates: candidate blocks per observation.
        item_ranges: the catalog-dependent ranges (:class:`ItemRanges`).
        portrait_support: ``(low, high)`` of ``budget`` and ``price_sensitivity`` over the population.
        inventory: add the stock features (``Feature.option == "inventory"``).
        observe_profit: add ``unit_profit_share`` too (``StoreConfig.observe_profit``; needs ``inventory``).
    """

    def __init__(self, category_names: tuple[str, ...], embed_dim: int, num_candidates: int,
                 item_ranges: ItemRanges, portrait_support: Mapping[str, tuple[float, float]],
                 inventory: bool = False, observe_profit: bool = False) -> None:
        self.num_candidates = num_candidates
        self.options = _options(inventory, observe_profit)
        self.item_ranges = item_ranges
        over = {"segments": SEGMENTS, "channels": CHANNELS, "categories": category_names,
                "embed_dim": [str(j) for j in range(embed_dim)]}
        (b_lo, b_hi), lp = portrait_support["budget"], item_ranges.log_price
        derived = {
            "log_budget": (np.log(b_lo) - kernels.LOG_BUDGET_CENTER, np.log(b_hi) - kernels.LOG_BUDGET_CENTER),
            "price_sensitivity": portrait_support["price_sensitivity"],
            "log_price_z": item_ranges.log_price_z,
            "rel_popularity": item_ranges.rel_popularity,
            "log_price_over_budget": (lp[0] - np.log(b_hi), lp[1] - np.log(b_lo)),
        }
        self.names: dict[str, list[str]] = {"portrait": [], "session": [], "item": [], "candidate": []}
        self.bounds: dict[str, list[tuple[float, float]]] = {part: [] for part in self.names}
        for f in FEATURES:
            if f.option is not None and f.option not in self.options:
                continue
            lo, hi = derived[f.bounds] if isinstance(f.bounds, str) else f.bounds
            assert lo < hi, (f.name, lo, hi)
            names = [f.name] if f.over is None else [f.name.format(s) for s in over[f.over]]
            self.names[f.part] += names
            self.bounds[f.part] += [_outward(lo, hi)] * len(names)
        #: features in front of the candidate blocks (portrait and session), and in a whole observation
        self.context_dim = len(self.names["portrait"]) + len(self.names["session"])
        self.obs_dim = self.context_dim + num_candidates * (len(self.names["item"]) + len(self.names["candidate"]))

    @property
    def portrait_names(self) -> list[str]:
        return self.names["portrait"]

    @property
    def session_names(self) -> list[str]:
        return self.names["session"]

    @property
    def item_names(self) -> list[str]:
        """The static item features (``item_table.features`` columns; the DNN's item features start with them)."""
        return self.names["item"]

    @property
    def candidate_names(self) -> list[str]:
        """One candidate block: the item features, then the session-dependent ones."""
        return self.names["item"] + self.names["candidate"]

    def space(self) -> spaces.Box:
        """The float32 ``Box`` of one observation."""
        b = self.bounds
        rows = b["portrait"] + b["session"] + (b["item"] + b["candidate"]) * self.num_candidates
        low, high = np.array(rows, dtype=np.float32).T
        return spaces.Box(low=low, high=high, dtype=np.float32)

    def observe(self, state: SimState, rows: np.ndarray | None = None) -> np.ndarray:
        """``(n, obs_dim)`` float32 observations of the sessions ``rows`` (all when None).

        A row depends on its session only: ``observe(state, rows) == observe(state)[rows]``.
        """
        rows = state.all_rows if rows is None else np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.obs_dim), dtype=np.float32)
        kernels.observe(rows, state.session.bundle, state.portraits.bundle, state.item_table.bundle,
                        state.retrieval.bundle, state.consts, out)
        return out


def _outward(lo: float, hi: float) -> tuple[np.float32, np.float32]:
    """``(lo, hi)`` rounded outward to float32: every float32 rounding of a value in ``[lo, hi]`` lies inside."""
    lo32, hi32 = np.float32(lo), np.float32(hi)
    if lo32 > lo:
        lo32 = np.nextafter(lo32, np.float32(-np.inf))
    if hi32 < hi:
        hi32 = np.nextafter(hi32, np.float32(np.inf))
    return lo32, hi32
