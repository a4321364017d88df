"""The lifecycle equations in motion: reproducible, per-customer streams, churn, loyalty, coupons, messages, carts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ecomsim.lifecycle.cohort import simulate_cohort
from ecomsim.lifecycle.emulator import load_visit_emulator
from ecomsim.lifecycle.entry import draw_entrants
from ecomsim.lifecycle.model import Lifecycle
from ecomsim.lifecycle.params import MESSAGE_KINDS, LifecycleParams
from ecomsim.lifecycle.returns import NEVER, RETURN_DRAWS, ReturnInputs, draw_return
from ecomsim.shoppers.population import ShopperPopulation

CAL, HOLD = 273, 273


@pytest.fixture(scope="module")
def emulator():
    return load_visit_emulator()


def entrants(emulator, n: int, seed: int, spread: int = 84):
    first = np.random.default_rng(seed).integers(0, spread, size=n)
    return draw_entrants(ShopperPopulation(emulator.catalog), first, emulator, np.random.default_rng(seed))


def summary_arrays(s):
    return [s.summary.customer, s.summary.day, s.summary.amount, s.customers.churn_day, s.customers.visits]


def test_same_seed_same_cohort_other_seed_another(emulator):
    lc = Lifecycle(emulator.catalog)
    a = simulate_cohort(lc, emulator, entrants(emulator, 300, 0), CAL, HOLD)
    b = simulate_cohort(lc, emulator, entrants(emulator, 300, 0), CAL, HOLD)
    c = simulate_cohort(lc, emulator, entrants(emulator, 300, 1), CAL, HOLD)
    for x, y in zip(summary_arrays(a), summary_arrays(b)):
        assert np.array_equal(x, y)
    assert not np.array_equal(a.summary.day, c.summary.day)


def test_a_customer_lives_the_same_life_alone_or_in_a_crowd(emulator):
    lc = Lifecycle(emulator.catalog)
    crowd = entrants(emulator, 400, 2)
    whole = simulate_cohort(lc, emulator, crowd, CAL, HOLD)
    idx = np.array([3, 17, 120, 399, 250])
    alone = simulate_cohort(lc, emulator, crowd.take(idx), CAL, HOLD)
    for k, i in enumerate(idx):
        assert np.array_equal(whole.summary.day[whole.summary.customer == i], alone.summary.day[alone.summary.customer == k])
        assert whole.customers.churn_day[i] == alone.customers.churn_day[k]
        assert whole.customers.visits[i] == alone.customers.visits[k]


def test_churned_customers_never_return_and_loyalty_stays_bounded(emulator):
    s = simulate_cohort(Lifecycle(emulator.catalog), emulator, entrants(emulator, 2000, 3), CAL, HOLD)
    c = s.customers
    churned = c.churn_day != NEVER
    assert churned.mean() > 0.2 and not c.alive[churned].any() and np.all(c.next_day[churned] == NEVER)
    last = np.full(len(c), -1)
    np.maximum.at(last, s.summary.customer, s.summary.day)
    assert np.all(last[churned] <= c.churn_day[churned])  # nothing bought after leaving
    assert np.all(np.abs(c.loyalty) <= 1.0)
    assert np.all((c.need >= 0) & (c.need <= 1))


def due(emulator, n: int, seed: int, params: LifecycleParams | None = None):
    """Customers at their first return visit (alive, visit within the horizon)."""
    lc = Lifecycle(emulator.catalog, params)
    c = lc.new_customers(entrants(emulator, n, seed, spread=1), 10_000)
    rows = np.flatnonzero(c.alive & (c.next_day != NEVER))
    return lc, c.take(rows)


def test_a_coupon_sells_more_now_and_brings_non_buyers_back_sooner(emulator):
    lc, c = due(emulator, 6000, 4)
    rows = np.arange(len(c))
    plain, offered = c.take(rows), c.take(rows)  # same streams: the coupon is the only difference
    a = lc.visit(plain, rows, emulator, until=10_000)
    b = lc.visit(offered, rows, emulator, until=10_000, coupon=np.full(len(rows), 0.2))
    assert b.outcome.purchased.mean() > a.outcome.purchased.mean()
    assert np.allclose(b.discount, 0.2) and np.all(b.outcome.discount_cost[~b.outcome.purchased] == 0)
    keep = ~a.outcome.purchased & ~b.outcome.purchased & (a.next_day != NEVER) & (b.next_day != NEVER)
    gap_a, gap_b = (a.next_day - a.day)[keep], (b.next_day - b.day)[keep]
    assert gap_b.mean() < 0.8 * gap_a.mean()  # return_coupon * 0.2 = e^1 on the visit hazard while valid


def test_messages_bring_visits_on_their_day_and_channel_cost_and_annoy(emulator):
    lc, c = due(emulator, 6000, 5)
    rows = np.arange(len(c))
    n = len(rows)
    quiet = lc.visit(c.take(rows), rows, emulator, until=10_000)
    push_day = np.full((n, 1), 3)
    pushed = lc.visit(c.take(rows), rows, emulator, until=10_000, message_day=push_day,
                      message_kind=np.zeros((n, 1), dtype=np.int64))
    def on_day(step):
        return np.mean(step.next_day - step.day == 3)

    assert on_day(pushed) > on_day(quiet) + 0.02  # message_response[push] = 0.05 on day 3
    sent = pushed.messages_sent == 1
    assert np.allclose(pushed.message_cost[sent], LifecycleParams().message_cost[0])
    assert np.all(pushed.message_cost[~sent] == 0)
    # eight e-mails in the gap: more unsubscribes and more annoyance than one
    spam = lc.visit(after := c.take(rows), rows, emulator, until=10_000, message_day=np.tile(np.arange(1, 9), (n, 1)),
                    message_kind=np.ones((n, 8), dtype=np.int64))
    assert spam.messages_sent.mean() > 3
    assert after.unsubscribed[:, MESSAGE_KINDS.index("email")].mean() > 0.01
    assert after.annoyance.mean() > 1.0


def test_carts_carry_across_visits_and_channels(emulator):
    params = dataclasses.replace(LifecycleParams(), visit_rate=0.3)  # many visits: many carts
    lc = Lifecycle(emulator.catalog, params)
    c = lc.new_customers(entrants(emulator, 3000, 6), 365)
    carted_on = np.full((len(c), emulator.catalog.num_items), -1)  # channel an item entered the cart on
    crossed = recovered = 0
    while True:
        rows = np.flatnonzero(c.alive & (c.next_day <= 365))
        if not len(rows):
            break
        before = c.cart[rows].copy()
        step = lc.visit(c, rows, emulator, until=365)
        gone = (before >= 0) & ~np.isin(before, step.outcome.cart)  # left the cart: bought or dropped
        r, k = np.nonzero(gone & (step.outcome.recovered[:, None] > 0))
        recovered += len(r)
        crossed += int(np.sum(carted_on[rows[r], before[r, k]] != step.channel[r]))
        r, k = np.nonzero((step.outcome.cart >= 0) & ~np.isin(step.outcome.cart, before))
        carted_on[rows[r], step.outcome.cart[r, k]] = step.channel[r]
    assert recovered > 20 and crossed > 5  # carted on one channel, bought on another


def test_return_draw_is_geometric_under_a_constant_hazard():
    p = dataclasses.replace(LifecycleParams(), revisit_boost=0.0)
    n = 40_000
    zeros = np.zeros(n)
    x = ReturnInputs(visit_rate=np.full(n, 0.1), churn_hazard=np.full(n, 0.02), need_deficit=zeros, loyalty=zeros,
                     annoyance=zeros, experience=zeros, coupon=zeros, coupon_until=zeros, cart_until=zeros,
                     message_day=np.zeros((n, 0), dtype=np.int64), message_kind=np.zeros((n, 0), dtype=np.int64),
                     unsubscribed=np.zeros((n, 3), dtype=bool), until=np.full(n, 10_000))
    d = draw_return(p, x, np.random.default_rng(0).random((n, RETURN_DRAWS)))
    visited = d.visit != NEVER
    # each day: churn first with 1 - e^-0.02, else a visit with 1 - e^-0.1
    q_churn, q_visit = -np.expm1(-0.02), -np.expm1(-0.1)
    p_visit = (1 - q_churn) * q_visit / (1 - (1 - q_churn) * (1 - q_visit))
    assert visited.mean() == pytest.approx(p_visit, abs=4 * np.sqrt(p_visit * (1 - p_visit) / n))
    assert np.all(visited ^ (d.churn != NEVER))
    day1 = np.mean(d.visit == 1)
    assert day1 == pytest.approx((1 - q_churn) * q_visit, abs=0.006)


def test_bad_offers_and_plans_are_named(emulator):
    lc, c = due(emulator, 200, 7)
    rows = np.arange(3)
    with pytest.raises(ValueError, match=r"coupon must be 3 discounts in \[0, 1\)"):
        lc.visit(c.take(np.arange(len(c))), rows, emulator, until=10_000, coupon=np.array([0.1, -0.05, 0.0]))
    with pytest.raises(ValueError, match=r"message_kind must index \['push', 'email', 'social'\]"):
        lc.visit(c.take(np.arange(len(c))), rows, emulator, until=10_000, message_day=np.ones((3, 1), dtype=np.int64),
                 message_kind=np.full((3, 1), 3))
    with pytest.raises(ValueError, match="message_day must be days after the visit"):
        lc.visit(c.take(np.arange(len(c))), rows, emulator, until=10_000, message_day=np.full((3, 1), -2),
                 message_kind=np.zeros((3, 1), dtype=np.int64))
    with pytest.raises(ValueError, match="a message plan holds at most 8 messages"):
        lc.visit(c.take(np.arange(len(c))), rows, emulator, until=10_000, message_day=np.ones((3, 9), dtype=np.int64),
                 message_kind=np.zeros((3, 9), dtype=np.int64))


def test_return_probability_is_what_the_draw_does(emulator):
    lc, c = due(emulator, 3000, 8)
    rows = np.arange(len(c))
    lc.visit(c, rows, emulator, until=10_000)  # a visit: needs, loyalty, experience now vary by customer
    exact = lc.return_probability(c, rows, 30)
    drawn = c.next_day - c.last_day <= 30  # the draw the visit step made (NEVER when churned)
    assert np.all((exact >= 0) & (exact < 1))
    # the draw already made for each customer (one per customer): its share within 30 days matches on average
    assert drawn.mean() == pytest.approx(exact.mean(), abs=4 * np.sqrt(exact.mean() * (1 - exact.mean()) / len(rows)))
    # and per customer, many fresh draws from the same state
    zeros = np.zeros((len(rows), 0), dtype=np.int64)
    x = lc._return_inputs(c, rows, c.last_day, c.last_day + 10_000, zeros, zeros)
    rng = np.random.default_rng(0)
    hits = np.mean([draw_return(lc.params, x, rng.random((len(c), RETURN_DRAWS))).visit <= 30 for _ in range(40)], axis=0)
    assert hits.mean() == pytest.approx(exact.mean(), abs=0.005)  # 120,000 draws: standard error ~0.0015
    assert np.corrcoef(hits, exact)[0, 1] > 0.9
    with pytest.raises(ValueError, match="days must be a positive whole number, got 0"):
        lc.return_probability(c, rows, 0)
