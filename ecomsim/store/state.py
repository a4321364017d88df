"""The store's state and its day: stock, the order pipeline, sales and the day's accounts.

:class:`StoreState` holds ``num_stores`` independent stores of the same items, all
on the same day (batch dimension first). Every array it holds:

============ ====================================== ===== =================================================
name         shape / dtype                          unit  meaning
============ ====================================== ===== =================================================
stock        (num_stores, num_items) int64          units on hand, never negative
due          (num_stores, ring, num_items) int64    units ordered, arriving at the start of day ``d`` in
                                                          slot ``d % ring`` (``ring`` = max lead time + 1)
demand       (num_stores, num_items) int64          units requested today (sold + lost)
sold         (num_stores, num_items) int64          units sold today
received     (num_stores, num_items) int64          units delivered at today's opening
ordered      (num_stores, num_items) int64          units ordered today (group orders split over items)
orders       (num_stores, num_groups) int64         group orders placed today (0 or 1 each)
lead         (num_items,) int64                     days  lead time of each item (its group's)
day          int                                    day   today's index, the same for every store
============ ====================================== ===== =================================================

**A day.** :meth:`open_day` receives the deliveries due today; demand then arrives
and is sold through :meth:`sell` (or :meth:`sell_dense`) any number of times;
:meth:`place_orders` orders per group (at most once a day; each group order goes to
the items furthest below their share of the group, ``ItemGroups.allocate``); :meth:`close_day` books
the day's accounts (:class:`DayAccount`) and moves to the next day. An order placed
on day ``t`` with lead time ``L`` (>= 1) is received at the opening of day ``t + L``.

**Who gets the last unit.** Requests are served in the order they are given: a
request gets ``min(quantity, stock left after the requests before it)``. The session
core passes its purchases in session-row order, so the lower row wins a tie; that
order is deterministic, and a caller that wants fairness passes a permuted order.

**Accounts** (per store and group, currency units): revenue = sold * price; cost of
goods sold = sold * unit cost (unit cost is booked when a unit is sold, so a day's
profit follows that day's decisions; over a horizon this differs from paying on
delivery only by the stock left over); holding = ``holding_cost_rate`` * unit cost
* units on hand at the close; ordering = ``order_fixed_cost`` per group order;
stock-out cost = ``lost_margin_weight`` * lost units * (price - unit cost); profit =
revenue - cost of goods sold - holding - ordering - stock-out cost.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ecomsim.store.config import StoreConfig
from ecomsim.store.items import ItemGroups, StoreItems


@dataclass
class DayAccount:
    """One day of ``num_stores`` stores, per group: every field ``(num_stores, num_groups)``.

    Units (int64): ``demand``, ``sold``, ``lost`` (demand - sold), ``received``,
    ``ordered``, ``orders`` (group orders placed), ``stock`` (on hand at the close),
    ``on_order`` (in the pipeline at the close), ``items_out`` (items with no stock
    at the close). Currency units (float64): ``revenue``, ``cogs``, ``holding``,
    ``ordering``, ``stockout_cost``, ``profit``, ``inventory_value`` (stock at unit cost).
    """

    demand: np.ndarray
    sold: np.ndarray
    lost: np.ndarray
    received: np.ndarray
    ordered: np.ndarray
    orders: np.ndarray
    stock: np.ndarray
    on_order: np.ndarray
    items_out: np.ndarray
    revenue: np.ndarray
    cogs: np.ndarray
    holding: np.ndarray
    ordering: np.ndarray
    stockout_cost: np.ndarray
    profit: np.ndarray
    inventory_value: np.ndarray

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


class StoreState:
    """Stock and orders of ``num_stores`` stores of the same items (array table in the module docstring).

    Args:
        config: the store options (costs, lead times, cap, initial fill).
        items: prices and unit costs.
        groups: the ordering groups over the same items.
        num_stores: stores simulated together, >= 1.
    """

    def __init__(self, config: StoreConfig, items: StoreItems, groups: ItemGroups, num_stores: int = 1) -> None:
        if isinstance(num_stores, bool) or not isinstance(num_stores, (int, np.integer)) or num_stores < 1:
            raise ValueError(f"num_stores must be a positive integer, got {num_stores!r}")
        if groups.num_items != items.num_items:
            raise ValueError(f"groups cover {groups.num_items} items but items has {items.num_items}")
        self.config = config
        self.items = items
        self.groups = groups
        self.num_stores = s = int(num_stores)
        self.num_items = i = items.num_items
        self.num_groups = groups.num_groups
        self.group_lead = config.lead_times(groups.num_groups)  # (G,) days
        self.lead = self.group_lead[groups.group_of]  # (I,) days
        self.ring = int(self.group_lead.max()) + 1
        leads = np.unique(self.lead)
        # (lead, item indexes or None for all items): deliveries are added slot by slot
        self._lead_items = [(int(v), None if leads.size == 1 else np.flatnonzero(self.lead == v)) for v in leads]
        self.stock = np.zeros((s, i), dtype=np.int64)
        self.due = np.zeros((s, self.ring, i), dtype=np.int64)
        self.demand = np.zeros((s, i), dtype=np.int64)
        self.sold = np.zeros((s, i), dtype=np.int64)
        self.received = np.zeros((s, i), dtype=np.int64)
        self.ordered = np.zeros((s, i), dtype=np.int64)
        self.orders = np.zeros((s, self.num_groups), dtype=np.int64)
        self.day = 0
        self._open = False
        self._ordered_today = False
        self._lost_per_unit = config.lost_margin_weight * items.unit_margin  # (I,) currency per lost unit

    # ================================================================ lifecycle
    def reset(self, demand_rate: np.ndarray) -> None:
        """Start day 0: stock = ``ceil(initial_fill_days * demand_rate)``, nothing on order.

        ``ceil``, so every item with expected demand starts with at least one unit, except
        the items whose ``initial_fill_days * demand_rate`` is below ``min_fill_units``
        (the long tail): they start empty.

        Args:
            demand_rate: ``(num_items,)`` or ``(num_stores, num_items)`` float64, expected
                units demanded per day (finite, >= 0).
        """
        rate = np.asarray(demand_rate, dtype=np.float64)
        if rate.shape not in ((self.num_items,), (self.num_stores, self.num_items)):
            raise ValueError(
                f"demand_rate must have shape ({self.num_items},) or ({self.num_stores}, {self.num_items}), got {rate.shape}"
            )
        if not np.all(np.isfinite(rate)) or (rate < 0).any():
            raise ValueError("demand_rate must be finite and >= 0 (units per day)")
        # shrunk by one part in 1e12 before the ceil, so a whole number that float
        # arithmetic left a hair above (10 * 1.1 = 11.000000000000002) is not rounded up a unit
        fill = self.config.initial_fill_days * rate * (1.0 - 1e-12)
        fill[fill < self.config.min_fill_units * (1.0 - 1e-12)] = 0.0
        self.stock[:] = np.ceil(fill).astype(np.int64)
        for arr in (self.due, self.demand, self.sold, self.received, self.ordered, self.orders):
            arr[...] = 0
        self.day = 0
        self._open = False

    def open_day(self) -> np.ndarray:
        """Receive the deliveries due today; returns ``received`` ``(num_stores, num_items)`` units."""
        if self._open:
            raise RuntimeError(f"day {self.day} is already open; call close_day() first")
        slot = self.day % self.ring
        self.received[:] = self.due[:, slot]
        self.due[:, slot] = 0
        self.stock += self.received
        for arr in (self.demand, self.sold, self.ordered, self.orders):
            arr[...] = 0
        self._open = True
        self._ordered_today = False
        return self.received.copy()

    def _check_open(self, what: str) -> None:
        if not self._open:
            raise RuntimeError(f"{what} needs an open day: call open_day() first (day {self.day})")

    # ==================================================================== sales
    def sell(self, items: np.ndarray, quantities: np.ndarray, stores: np.ndarray | None = None) -> np.ndarray:
        """Serve requests in the order given; never sells more than is on hand.

        Args:
            items: ``(n,)`` int item indexes in ``[0, num_items)``.
            quantities: ``(n,)`` int units requested, >= 0.
            stores: ``(n,)`` int store indexes (``None``: all in store 0).

        Returns:
            ``(n,)`` int64 units sold per request (``< quantities`` means a stock-out).
        """
        self._check_open("sell")
        items = self._index_array("items", items, self.num_items)
        n = items.shape[0]
        stores = np.zeros(n, dtype=np.int64) if stores is None else self._index_array("stores", stores, self.num_stores)
        qty = self._units_array("quantities", quantities)
        if stores.shape != (n,) or qty.shape != (n,):
            raise ValueError(
                f"items, quantities and stores must have one shape (n,), got {items.shape}, {qty.shape}, {stores.shape}"
            )
        key = stores * self.num_items + items
        order = np.argsort(key, kind="stable")  # groups requests per (store, item), keeping their order
        k, q = key[order], qty[order]
        first = np.ones(n, dtype=bool)
        first[1:] = k[1:] != k[:-1]
        cum = np.cumsum(q)
        start = np.flatnonzero(first)
        seg = np.cumsum(first) - 1  # segment of each sorted request
        before = cum - q - (cum[start] - q[start])[seg]  # units requested earlier for the same (store, item)
        on_hand = self.stock.reshape(-1)[k]
        sold_sorted = np.clip(on_hand - before, 0, q)
        sold = np.empty(n, dtype=np.int64)
        sold[order] = sold_sorted
        flat = (self.stock.reshape(-1), self.demand.reshape(-1), self.sold.reshape(-1))
        np.subtract.at(flat[0], k, sold_sorted)
        np.add.at(flat[1], k, q)
        np.add.at(flat[2], k, sold_sorted)
        assert (self.stock >= 0).all(), "stock went negative"
        return sold

    def sell_dense(self, quantities: np.ndarray) -> np.ndarray:
        """Serve one request per (store, item): ``quantities`` ``(num_stores, num_items)`` units >= 0.

        Same rule as :meth:`sell` with one request each, in one vector operation.
        Returns ``(num_stores, num_items)`` int64 units sold.
        """
        self._check_open("sell_dense")
        qty = self._units_array("quantities", quantities)
        if qty.shape != self.stock.shape:
            raise ValueError(f"quantities must have shape {self.stock.shape} (num_stores, num_items), got {qty.shape}")
        sold = np.minimum(qty, self.stock)
        self.stock -= sold
        self.demand += qty
        self.sold += sold
        return sold

    def record(self, sold_items: np.ndarray, lost_items: np.ndarray, store: int = 0) -> None:
        """Book sales that a session core made itself (inventory on, ``ecomsim.sim.stock``).

        The core's step kernels take a unit from ``stock`` (this state's row ``store``, the
        core's ``item_table.stock``) as a session buys it, so here only the books move:
        each entry of ``sold_items`` is one unit sold, each of ``lost_items`` one unit that
        found no stock; both count as demand.

        Args:
            sold_items, lost_items: ``(n,)`` int item indexes (repeats are several units).
            store: the store the core shops in.
        """
        self._check_open("record")
        for name, idx in (("sold_items", sold_items), ("lost_items", lost_items)):
            idx = self._index_array(name, idx, self.num_items)
            if idx.size:
                np.add.at(self.demand[store], idx, 1)
                if name == "sold_items":
                    np.add.at(self.sold[store], idx, 1)
        assert (self.stock >= 0).all(), "stock went negative"

    # =================================================================== orders
    def place_orders(self, group_units: np.ndarray, item_weights: np.ndarray) -> np.ndarray:
        """Order ``group_units`` per group, allocated to items by fair share (:meth:`ItemGroups.allocate`).

        Args:
            group_units: ``(num_stores, num_groups)`` whole units >= 0 (ints, or floats
                holding whole numbers), each at most ``max_order_units``; NaN, negative,
                fractional or larger values are errors naming the group and value.
            item_weights: ``(num_items,)`` or ``(num_stores, num_items)`` float >= 0,
                each item's forecast demand (any scale): its share of the group's.

        Returns:
            ``(num_stores, num_items)`` int64 units ordered per item.
        """
        self._check_open("place_orders")
        if self._ordered_today:
            raise RuntimeError(f"orders for day {self.day} were already placed; one order per group and day")
        q = self._order_array(group_units)
        units = self.groups.allocate(q, item_weights, self.stock + self.on_order())
        for lead, cols in self._lead_items:  # items by lead time: one ring slot each
            slot = (self.day + lead) % self.ring
            if cols is None:
                self.due[:, slot] += units
            else:
                self.due[:, slot, cols] += units[:, cols]
        self.ordered += units
        self.orders += (q > 0).astype(np.int64)
        self._ordered_today = True
        return units

    def close_day(self) -> DayAccount:
        """Book the day (accounts in the module docstring), then move to the next day."""
        self._check_open("close_day")
        g = self.groups.totals
        cost = self.items.unit_cost
        sold_f = self.sold.astype(np.float64)
        demand, sold = g(self.demand), g(self.sold)
        revenue = g(sold_f * self.items.price)
        cogs = g(sold_f * cost)
        inventory_value = g(self.stock * cost)
        ordering = self.config.order_fixed_cost * self.orders.astype(np.float64)
        stockout = g((self.demand - self.sold) * self._lost_per_unit)
        holding = self.config.holding_cost_rate * inventory_value  # rate * unit cost per unit-day, summed
        account = DayAccount(
            demand=demand, sold=sold, lost=demand - sold, received=g(self.received), ordered=g(self.ordered),
            orders=self.orders.copy(), stock=g(self.stock), on_order=g(self.on_order()),
            items_out=g(self.stock == 0),
            revenue=revenue, cogs=cogs, holding=holding, ordering=ordering, stockout_cost=stockout,
            profit=revenue - cogs - holding - ordering - stockout, inventory_value=inventory_value,
        )
        self.day += 1
        self._open = False
        return account

    # ==================================================================== views
    def on_order(self) -> np.ndarray:
        """``(num_stores, num_items)`` int64 units ordered and not yet received."""
        return self.due.sum(axis=1)

    def arriving(self, days_ahead: int) -> np.ndarray:
        """``(num_stores, num_items)`` int64 units received at the opening ``days_ahead`` (>= 1) days after today."""
        if not 1 <= days_ahead < self.ring:
            raise ValueError(f"days_ahead must be in [1, {self.ring - 1}] (the longest lead time), got {days_ahead}")
        return self.due[:, (self.day + days_ahead) % self.ring].copy()

    def position(self) -> np.ndarray:
        """``(num_stores, num_groups)`` int64 inventory position per group: on hand + on order."""
        return self.groups.totals(self.stock + self.on_order())

    # =============================================================== validation
    @staticmethod
    def _index_array(name: str, values: np.ndarray, size: int) -> np.ndarray:
        arr = np.asarray(values)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must be a 1-d integer array, got shape {arr.shape} dtype {arr.dtype}")
        bad = (arr < 0) | (arr >= size)
        if bad.any():
            raise ValueError(f"{name} must be indexes in [0, {size - 1}], got {arr[bad][:5].tolist()}")
        return arr.astype(np.int64, copy=False)

    @staticmethod
    def _units_array(name: str, values: np.ndarray) -> np.ndarray:
        arr = np.asarray(values)
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must be integer units, got dtype {arr.dtype}")
        if (arr < 0).any():
            raise ValueError(f"{name} must be >= 0 units, got {arr[arr < 0][:5].tolist()}")
        return arr.astype(np.int64, copy=False)

    def _order_array(self, group_units: np.ndarray) -> np.ndarray:
        arr = np.asarray(group_units)
        shape = (self.num_stores, self.num_groups)
        if arr.shape != shape:
            raise ValueError(f"order quantities must have shape {shape} (num_stores, num_groups), got {arr.shape}")
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise ValueError(f"order quantities must be numbers of units, got dtype {arr.dtype}")
        for test, what in ((lambda a: np.isnan(a), "not NaN"), (lambda a: a < 0, ">= 0"),
                           (lambda a: a > self.config.max_order_units, f"<= max_order_units={self.config.max_order_units}"),
                           (lambda a: a != np.floor(a), "whole units")):
            bad = test(arr)
            if bad.any():
                s, grp = (int(v) for v in np.argwhere(bad)[0])
                raise ValueError(
                    f"order quantity for group {self.groups.names[grp]!r} (store {s}) must be {what}, got {arr[s, grp].item()!r}"
                )
        return arr.astype(np.int64)
