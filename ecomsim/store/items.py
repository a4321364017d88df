"""What the store sells and how it orders: item economics (:class:`StoreItems`) and item groups (:class:`ItemGroups`).

A :class:`~ecomsim.catalog.Catalog` has prices but no costs; the store derives them:
``unit_cost = price * (1 - margin)`` with the item's category margin
(``StoreConfig.category_margins``) or the store-wide ``StoreConfig.margin``.

Orders are placed per group, never per item (a buyer orders "shoes", not 300 SKUs
one by one); :meth:`ItemGroups.allocate` turns a group order into integer item units
by fair share, through the exact rounding of :meth:`ItemGroups.split`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecomsim.catalog import Catalog
from ecomsim.errors import suggest
from ecomsim.store.config import StoreConfig


@dataclass(frozen=True, eq=False)
class StoreItems:
    """Item economics, one entry per catalog item (arrays read-only).

    Attributes:
        price: ``(num_items,)`` float64, currency units per unit sold.
        unit_cost: ``(num_items,)`` float64, currency units paid per unit, ``price * (1 - margin)``.
        popularity: ``(num_items,)`` float64, the catalog's popularity prior (sums to 1).
        category: ``(num_items,)`` int64, index into ``category_names``.
        category_names: the catalog's category names.
    """

    price: np.ndarray
    unit_cost: np.ndarray
    popularity: np.ndarray
    category: np.ndarray
    category_names: tuple[str, ...]

    def __post_init__(self) -> None:
        for name in ("price", "unit_cost", "popularity", "category"):
            arr = np.array(getattr(self, name), dtype=np.int64 if name == "category" else np.float64, copy=True)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        n = self.price.shape[0]
        for name in ("unit_cost", "popularity", "category"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},) like price, got {getattr(self, name).shape}")
        if not (np.all(self.unit_cost >= 0) and np.all(self.unit_cost < self.price)):
            raise ValueError("unit_cost must be in [0, price) for every item (a positive margin)")

    @classmethod
    def from_catalog(cls, catalog: Catalog, config: StoreConfig) -> "StoreItems":
        """Prices from the catalog, unit costs from the config's margins (errors name unknown categories)."""
        margin = np.full(catalog.num_categories, config.margin)
        for name, value in (config.category_margins or {}).items():
            if name not in catalog.category_names:
                valid = list(catalog.category_names)
                raise ValueError(f"category_margins has unknown category {name!r}; valid: {valid}.{suggest(str(name), valid)}")
            margin[catalog.category_names.index(name)] = value
        return cls(price=catalog.price, unit_cost=catalog.price * (1.0 - margin[catalog.category]),
                   popularity=catalog.popularity, category=catalog.category, category_names=catalog.category_names)

    @property
    def num_items(self) -> int:
        return int(self.price.shape[0])

    @property
    def unit_margin(self) -> np.ndarray:
        """``(num_items,)`` float64 currency units earned per unit sold, ``price - unit_cost``."""
        return self.price - self.unit_cost


class ItemGroups:
    """A partition of the items into ordering groups.

    Args:
        group_of: ``(num_items,)`` int64 group index of every item; every group in
            ``[0, len(names))`` must hold at least one item.
        names: one name per group.
    """

    def __init__(self, group_of: np.ndarray, names: tuple[str, ...] | list[str]) -> None:
        group_of = np.array(group_of, dtype=np.int64, copy=True)
        self.names = tuple(str(n) for n in names)
        num_groups = len(self.names)
        if group_of.ndim != 1 or group_of.size == 0:
            raise ValueError(f"group_of must be a non-empty 1-d array of group indexes, got shape {group_of.shape}")
        if group_of.min() < 0 or group_of.max() >= num_groups:
            raise ValueError(
                f"group_of must hold group indexes in [0, {num_groups - 1}], got values in [{group_of.min()}, {group_of.max()}]"
            )
        self.sizes = np.bincount(group_of, minlength=num_groups).astype(np.int64)  # (num_groups,) items per group
        if (self.sizes == 0).any():
            raise ValueError(f"every group must hold an item; empty: {[self.names[i] for i in np.flatnonzero(self.sizes == 0)]}")
        group_of.setflags(write=False)
        self.group_of = group_of
        # each group's item indexes, ascending: group sums and splits work group by group on
        # these (measured: about 5x faster than one reduceat over a (stores, items) array)
        self.members = tuple(np.flatnonzero(group_of == g) for g in range(num_groups))

    @property
    def num_groups(self) -> int:
        return len(self.names)

    @property
    def num_items(self) -> int:
        return int(self.group_of.shape[0])

    # -------------------------------------------------------------- builders
    @classmethod
    def by_category(cls, catalog: Catalog) -> "ItemGroups":
        """One group per category present in the catalog (a category with no item gets no group), in category order."""
        present = np.unique(catalog.category)
        remap = np.full(catalog.num_categories, -1, dtype=np.int64)
        remap[present] = np.arange(len(present))
        return cls(remap[catalog.category], [catalog.category_names[c] for c in present])

    @classmethod
    def top_n(cls, catalog: Catalog, n: int) -> "ItemGroups":
        """Groups ``0..n-1``: the ``n`` most popular items, most popular first (ties: lower row); group ``n``: the rest."""
        if not 1 <= n < catalog.num_items:
            raise ValueError(
                f"top_n must be in [1, num_items - 1 = {catalog.num_items - 1}] (the rest group needs an item), got {n}"
            )
        top = np.argsort(-catalog.popularity, kind="stable")[:n]
        group_of = np.full(catalog.num_items, n, dtype=np.int64)
        group_of[top] = np.arange(n)
        return cls(group_of, [f"item_{int(catalog.item_id[i])}" for i in top] + ["rest"])

    @classmethod
    def from_config(cls, catalog: Catalog, config: StoreConfig) -> "ItemGroups":
        """The grouping named by ``config.grouping``."""
        if config.grouping == "category":
            return cls.by_category(catalog)
        return cls.top_n(catalog, config.top_n)

    # ------------------------------------------------------------ arithmetic
    def totals(self, values: np.ndarray) -> np.ndarray:
        """``(..., num_groups)`` sums over each group's items of ``values`` ``(..., num_items)``.

        The dtype is kept, except that booleans are counted (int64).
        """
        values = np.asarray(values)
        if values.shape[-1] != self.num_items:
            raise ValueError(f"values must have num_items={self.num_items} in the last axis, got shape {values.shape}")
        dtype = np.int64 if values.dtype == np.bool_ else values.dtype
        out = np.empty(values.shape[:-1] + (self.num_groups,), dtype=dtype)
        for g, members in enumerate(self.members):
            out[..., g] = values[..., members].sum(axis=-1)
        return out

    def allocate(self, group_units: np.ndarray, shares: np.ndarray, position: np.ndarray) -> np.ndarray:
        """Fair-share allocation: give a group order to the items furthest below their share.

        After an order of ``q_g`` units the group's position (on hand + on order) is
        ``P_g + q_g``; item ``i``'s fair share of it is ``s_i * (P_g + q_g)`` (``s_i`` its
        share of the group's forecast demand); its need is ``max(0, s_i * (P_g + q_g) -
        p_i)`` (``p_i`` its own position). The order is split in proportion to the needs
        (:meth:`split`). The needs sum to at least ``q_g`` (without the ``max`` they sum
        to exactly ``q_g``), so no item gets more than its need and, when no item is above
        its share, every item ends at its share up to the rounding. Why not split by the
        shares alone: that ignores which items the day's sales emptied, and refills a
        best seller that sold out no faster than one that did not sell.

        Args:
            group_units: ``(num_stores, num_groups)`` int64 units ordered per group, >= 0.
            shares: ``(num_stores, num_items)`` or ``(num_items,)`` float64 >= 0, each item's
                forecast demand, any scale (normalised per group; an all-zero group: equal shares).
            position: ``(num_stores, num_items)`` int64 units on hand + on order per item.

        Returns:
            ``(num_stores, num_items)`` int64 units per item, summing to ``group_units`` per group.
        """
        q = np.asarray(group_units, dtype=np.int64)
        w = np.broadcast_to(np.asarray(shares, dtype=np.float64), position.shape)
        if not np.all(np.isfinite(w)) or (w < 0).any():
            raise ValueError("allocation shares must be finite and >= 0")
        if not q.any():  # most days of most policies: nothing to allocate
            return np.zeros(position.shape, dtype=np.int64)
        total = self.totals(w)[:, self.group_of]
        share = np.divide(w, total, out=np.broadcast_to(1.0 / self.sizes[self.group_of], w.shape).copy(), where=total > 0)
        after = (self.totals(position) + q)[:, self.group_of]  # (S, I) the group's position after the order
        need = np.maximum(0.0, share * after - position)
        return self.split(q, need)

    def split(self, group_units: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Split integer group orders over their items, exactly, by largest remainder.

        Item ``i`` of group ``g`` gets the quota ``q_g * w_i / W_g`` (``W_g`` the sum of
        the group's weights; an all-zero group splits equally), rounded down; the
        ``q_g - sum(floors)`` units left go one each to the items with the largest
        remainders (ties: the lower item index). So item units are integers >= 0 and
        sum to ``q_g`` exactly, and no item is ever more than one unit from its quota.

        Args:
            group_units: ``(num_stores, num_groups)`` int64 units ordered per group, >= 0.
            weights: ``(num_stores, num_items)`` or ``(num_items,)`` float64 >= 0, finite:
                each item's share of its group's forecast demand, any scale.

        Returns:
            ``(num_stores, num_items)`` int64 units per item.
        """
        q = np.asarray(group_units, dtype=np.int64)
        if q.ndim != 2 or q.shape[1] != self.num_groups or (q < 0).any():
            raise ValueError(f"group_units must be (num_stores, num_groups={self.num_groups}) units >= 0, got shape {q.shape}")
        num_stores = q.shape[0]
        w = np.broadcast_to(np.asarray(weights, dtype=np.float64), (num_stores, self.num_items))
        if not np.all(np.isfinite(w)) or (w < 0).any():
            raise ValueError("split weights must be finite and >= 0")
        units = np.zeros((num_stores, self.num_items), dtype=np.int64)
        for g, members in enumerate(self.members):
            rows = np.flatnonzero(q[:, g])
            if not rows.size:
                continue
            wg = w[np.ix_(rows, members)]  # (R, n_g)
            total = wg.sum(axis=1, keepdims=True)
            share = np.divide(wg, total, out=np.full_like(wg, 1.0 / members.size), where=total > 0)
            quota = q[rows, g][:, None] * share
            base = np.floor(quota).astype(np.int64)
            left = q[rows, g] - base.sum(axis=1)
            # floats can only push a floor down by one at items whose true remainder is 0,
            # which then carry a remainder near 1 and win back their unit: 0 <= left <= n_g
            assert (left >= 0).all() and (left <= members.size).all(), "largest-remainder invariant"
            # a stable sort of the negated remainders keeps the lower item index first among ties
            order = np.argsort(-(quota - base), axis=1, kind="stable")
            extra = (np.arange(members.size)[None, :] < left[:, None]).astype(np.int64)
            add = np.zeros_like(base)
            np.put_along_axis(add, order, extra, axis=1)  # one unit each to the `left` largest remainders
            units[np.ix_(rows, members)] = base + add
        return units
