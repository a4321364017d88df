"""The store's day: stock never negative, sales equal depletion, deliveries on their day, the accounts, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from ecomsim.store import DayAccount, ItemGroups, StoreConfig, StoreItems, StoreState

NUM_ITEMS = 40


def small_store(num_stores: int = 3, lead=(1, 2, 5), **overrides) -> StoreState:
    rng = np.random.default_rng(123)
    price = np.round(rng.lognormal(3.0, 0.6, NUM_ITEMS), 2)
    config = StoreConfig(lead_time_days=list(lead), max_order_units=500, **overrides)
    items = StoreItems(price=price, unit_cost=price * (1 - config.margin), popularity=np.full(NUM_ITEMS, 1 / NUM_ITEMS),
                       category=np.arange(NUM_ITEMS) % 3, category_names=("a", "b", "c"))
    groups = ItemGroups(np.arange(NUM_ITEMS) % 3, ["a", "b", "c"])
    return StoreState(config, items, groups, num_stores)


def serve_in_order(stock: np.ndarray, stores, items, quantities) -> np.ndarray:
    """The documented rule written as a plain loop: each request takes what is left, in order."""
    left = stock.copy()
    sold = np.zeros(len(items), dtype=np.int64)
    for j, (s, i, q) in enumerate(zip(stores, items, quantities)):
        sold[j] = min(q, left[s, i])
        left[s, i] -= sold[j]
    return sold


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_thousand_days_of_random_orders_and_sales(seed):
    """Over 1,000 store-days of random orders and competing requests (3 stores, per-group lead times 1/2/5 days):
    stock never negative, sales follow the request order, depletion = sales, every delivery on its day, accounts add up."""
    rng = np.random.default_rng(seed)
    state = small_store()
    s, n = state.num_stores, state.num_items
    state.reset(rng.uniform(0, 2, n))
    expected_arrivals: dict[int, np.ndarray] = {}
    for day in range(1000 // s + 1):
        before = state.stock.copy()
        received = state.open_day()
        np.testing.assert_array_equal(received, expected_arrivals.pop(day, np.zeros((s, n), dtype=np.int64)))
        np.testing.assert_array_equal(state.stock, before + received)
        start = state.stock.copy()
        sold_total = np.zeros((s, n), dtype=np.int64)
        demand_total = np.zeros((s, n), dtype=np.int64)
        for _ in range(rng.integers(0, 4)):  # several selling rounds a day, like steps of sessions
            k = int(rng.integers(0, 60))
            stores = rng.integers(0, s, k)
            items = rng.integers(0, 8, k) if rng.random() < 0.5 else rng.integers(0, n, k)  # crowd a few items
            qty = rng.integers(0, 4, k)
            expect = serve_in_order(state.stock, stores, items, qty)
            sold = state.sell(items, qty, stores)
            np.testing.assert_array_equal(sold, expect)
            assert (sold <= qty).all() and (state.stock >= 0).all()
            np.add.at(sold_total, (stores, items), sold)
            np.add.at(demand_total, (stores, items), qty)
        if rng.random() < 0.5:
            dense = rng.integers(0, 3, (s, n))
            sold = state.sell_dense(dense)
            np.testing.assert_array_equal(sold, np.minimum(dense, start - sold_total))
            sold_total += sold
            demand_total += dense
        np.testing.assert_array_equal(state.sold, sold_total)
        np.testing.assert_array_equal(state.demand, demand_total)
        np.testing.assert_array_equal(state.stock, start - sold_total)  # sales equal depletion
        q = np.where(rng.random((s, 3)) < 0.4, rng.integers(0, 500, (s, 3)), 0)
        units = state.place_orders(q, rng.random(n))
        np.testing.assert_array_equal(state.groups.totals(units), q)
        for lead in (1, 2, 5):
            cols = state.lead == lead
            arrive = expected_arrivals.setdefault(day + lead, np.zeros((s, n), dtype=np.int64))
            arrive[:, cols] += units[:, cols]
        pending = sum(v for v in expected_arrivals.values())
        np.testing.assert_array_equal(state.on_order(), pending)
        acct = state.close_day()
        check_account(state, acct, start, sold_total, demand_total, received, units, q)
        assert state.day == day + 1


def check_account(state, acct: DayAccount, start, sold, demand, received, units, q):
    g, items, config = state.groups.totals, state.items, state.config
    stock = start - sold
    np.testing.assert_array_equal(acct.sold, g(sold))
    np.testing.assert_array_equal(acct.demand, g(demand))
    np.testing.assert_array_equal(acct.lost, g(demand - sold))
    np.testing.assert_array_equal(acct.received, g(received))
    np.testing.assert_array_equal(acct.ordered, g(units))
    np.testing.assert_array_equal(acct.orders, (q > 0).astype(np.int64))
    np.testing.assert_array_equal(acct.stock, g(stock))
    np.testing.assert_array_equal(acct.items_out, g(stock == 0))
    np.testing.assert_allclose(acct.revenue, g(sold * items.price))
    np.testing.assert_allclose(acct.cogs, g(sold * items.unit_cost))
    np.testing.assert_allclose(acct.holding, g(stock * items.unit_cost * config.holding_cost_rate))
    np.testing.assert_allclose(acct.ordering, (q > 0) * config.order_fixed_cost)
    np.testing.assert_allclose(acct.stockout_cost, g((demand - sold) * (items.price - items.unit_cost)) * config.lost_margin_weight)
    np.testing.assert_allclose(acct.profit, acct.revenue - acct.cogs - acct.holding - acct.ordering - acct.stockout_cost)


def test_delivery_lands_exactly_on_its_day():
    state = small_store(num_stores=1, lead=(1, 2, 5), initial_fill_days=0.0)
    state.reset(np.zeros(NUM_ITEMS))
    state.open_day()
    state.place_orders(np.array([[3, 6, 9]]), np.ones(NUM_ITEMS))  # day 0, leads 1 / 2 / 5
    state.close_day()
    on_hand = []
    for _ in range(1, 8):
        state.open_day()
        on_hand.append(state.groups.totals(state.stock)[0].tolist())
        state.place_orders(np.zeros((1, 3), dtype=np.int64), np.ones(NUM_ITEMS))
        state.close_day()
    assert on_hand == [[3, 0, 0], [3, 6, 0], [3, 6, 0], [3, 6, 0], [3, 6, 9], [3, 6, 9], [3, 6, 9]]


def test_the_last_unit_goes_to_the_first_request():
    state = small_store(num_stores=2, initial_fill_days=0.0)
    state.reset(np.zeros(NUM_ITEMS))
    state.stock[0, 4] = 1
    state.stock[1, 4] = 2
    state.open_day()
    # three sessions of store 0 and two of store 1 want item 4, in this order
    sold = state.sell(np.array([4, 4, 4, 4, 4]), np.array([1, 1, 1, 1, 2]), np.array([0, 1, 0, 0, 1]))
    np.testing.assert_array_equal(sold, [1, 1, 0, 0, 1])
    assert state.stock[:, 4].tolist() == [0, 0]
    assert state.demand[:, 4].tolist() == [3, 3] and state.sold[:, 4].tolist() == [1, 2]


def test_initial_fill_is_days_of_demand_rounded_up():
    state = small_store(num_stores=2, initial_fill_days=10.0, min_fill_units=0.0)
    state.reset(np.arange(NUM_ITEMS) / 39.0)  # 10 days * k / 39 units a day
    assert state.stock[0].tolist() == [-(-10 * k // 39) for k in range(NUM_ITEMS)]  # exact ceil in integers
    assert state.stock[0, 0] == 0 and (state.stock[:, 1:] >= 1).all()
    state.reset(np.full(NUM_ITEMS, 1.1))  # 10 * 1.1 is 11.000000000000002 in floats: still 11 units
    assert (state.stock == 11).all()


def test_the_long_tail_below_min_fill_units_starts_empty():
    state = small_store(num_stores=1, initial_fill_days=10.0, min_fill_units=2.0)
    state.reset(np.arange(NUM_ITEMS) / 39.0)  # fills 10 k / 39 units: below 2 units for k <= 7
    want = [0 if 10 * k / 39 < 2 else -(-10 * k // 39) for k in range(NUM_ITEMS)]
    assert state.stock[0].tolist() == want and want[7] == 0 and want[8] == 3
    state.reset(np.full(NUM_ITEMS, 0.2))  # exactly 2.0 units (as floats round it): kept
    assert (state.stock == 2).all()


@pytest.mark.parametrize(
    "orders, match",
    [
        ([[1.0, np.nan, 0.0]], r"order quantity for group 'b' \(store 0\) must be not NaN, got nan"),
        ([[1, -2, 0]], r"order quantity for group 'b' \(store 0\) must be >= 0, got -2"),
        ([[0, 0, 501]], r"order quantity for group 'c' \(store 0\) must be <= max_order_units=500, got 501"),
        ([[0, 0, np.inf]], r"order quantity for group 'c' \(store 0\) must be <= max_order_units=500, got inf"),
        ([[2.5, 0, 0]], r"order quantity for group 'a' \(store 0\) must be whole units, got 2.5"),
        ([[1, 2]], r"order quantities must have shape \(1, 3\) \(num_stores, num_groups\), got \(1, 2\)"),
    ],
)
def test_bad_orders_name_group_and_value(orders, match):
    state = small_store(num_stores=1)
    state.reset(np.ones(NUM_ITEMS))
    state.open_day()
    with pytest.raises(ValueError, match=match):
        state.place_orders(np.array(orders), np.ones(NUM_ITEMS))
    assert state.on_order().sum() == 0  # nothing was ordered


def test_bad_sales_and_call_order():
    state = small_store(num_stores=1)
    state.reset(np.ones(NUM_ITEMS))
    with pytest.raises(RuntimeError, match=r"sell needs an open day: call open_day\(\) first \(day 0\)"):
        state.sell(np.array([0]), np.array([1]))
    state.open_day()
    with pytest.raises(RuntimeError, match="day 0 is already open"):
        state.open_day()
    with pytest.raises(ValueError, match=r"quantities must be >= 0 units, got \[-1\]"):
        state.sell(np.array([0]), np.array([-1]))
    with pytest.raises(ValueError, match=r"quantities must be integer units, got dtype float64"):
        state.sell(np.array([0]), np.array([1.5]))
    with pytest.raises(ValueError, match=rf"items must be indexes in \[0, {NUM_ITEMS - 1}\], got \[{NUM_ITEMS}\]"):
        state.sell(np.array([NUM_ITEMS]), np.array([1]))
    with pytest.raises(ValueError, match=r"stores must be indexes in \[0, 0\], got \[1\]"):
        state.sell(np.array([0]), np.array([1]), np.array([1]))
    state.place_orders(np.zeros((1, 3), dtype=np.int64), np.ones(NUM_ITEMS))
    with pytest.raises(RuntimeError, match="orders for day 0 were already placed"):
        state.place_orders(np.zeros((1, 3), dtype=np.int64), np.ones(NUM_ITEMS))
    with pytest.raises(ValueError, match=r"demand_rate must be finite and >= 0"):
        state.reset(np.full(NUM_ITEMS, -1.0))
