"""Visits: the interface, real sessions of the core (bit-identical to ordinary sessions), carts, the emulator."""

from __future__ import annotations

import numpy as np
import pytest

from ecomsim.envs import EcomVectorEnv
from ecomsim.lifecycle.emulator import load_visit_emulator
from ecomsim.lifecycle.sessions import SessionVisits
from ecomsim.lifecycle.visits import CART_SLOTS, VisitSimulator, push_cart, recover_cart
from ecomsim.sim.streams import key_from_generator, keys_from_seeds


@pytest.fixture(scope="module")
def sessions() -> SessionVisits:
    return SessionVisits()


def test_both_simulators_follow_the_protocol(sessions):
    assert isinstance(sessions, VisitSimulator)
    assert isinstance(load_visit_emulator(), VisitSimulator)


def test_anonymous_context_runs_the_ordinary_session_bit_for_bit(sessions):
    seeds = list(range(100, 140))
    keys = keys_from_seeds(seeds)
    ours = sessions.run_keys(sessions.anonymous_context(keys), keys)
    env = EcomVectorEnv(num_envs=len(seeds), user_model="reference", catalog="reference")
    env.reset(seed=seeds)
    done = np.zeros(len(seeds), dtype=bool)
    totals = {k: np.zeros(len(seeds)) for k in ("clicks", "purchases", "revenue", "length")}
    for _ in range(env.config.max_steps):
        actions = np.argmax(env.core.catalog.popularity[env.core.candidates], axis=1)
        _, _, term, trunc, info = env.step(actions)
        live = ~done
        for k in ("clicks", "purchases", "revenue"):
            totals[k] += np.where(live, info[k], 0)
        totals["length"] += live
        done |= term | trunc
        if done.all():
            break
    assert np.array_equal(totals["clicks"], ours["clicks"])
    assert np.array_equal(totals["purchases"], ours["items"])
    assert np.array_equal(totals["revenue"], ours["revenue"])
    assert np.array_equal(totals["length"], ours["length"])


def test_a_visit_depends_on_its_own_context_and_key_only(sessions):
    rng = np.random.default_rng(0)
    keys = key_from_generator(rng, 24)
    ctx = sessions.anonymous_context(key_from_generator(rng, 24))
    ctx.intent_offset[:] = 2.0
    whole = sessions.visit(ctx, keys)
    part = sessions.visit(ctx.take(np.arange(5, 12)), keys[5:12])  # another batch size and position
    for name in ("purchased", "revenue", "clicks", "session_length", "cart"):
        assert np.array_equal(getattr(whole, name)[5:12], getattr(part, name)), name


def test_intent_offset_and_coupon_raise_conversion(sessions):
    rng = np.random.default_rng(1)
    n = 6000
    ctx = sessions.anonymous_context(key_from_generator(rng, n))
    keys = key_from_generator(rng, n)
    base = sessions.visit(ctx, keys).purchased.mean()
    ctx.intent_offset[:] = 2.0
    warm = sessions.visit(ctx, keys).purchased.mean()
    ctx.discount[:] = 0.2
    coupon = sessions.visit(ctx, keys)
    assert warm > 2.5 * base  # same sessions (same keys): the offset alone
    assert coupon.purchased.mean() >= warm
    paid = coupon.revenue[coupon.purchased]
    np.testing.assert_allclose(coupon.discount_cost[coupon.purchased], paid / 0.8 * 0.2)


def test_push_cart_keeps_the_newest_items_once():
    cart = np.array([[5, 6, -1, -1], [1, 2, 3, 4], [-1, -1, -1, -1]])
    new = np.array([[6, 7], [9, -1], [-1, -1]])
    out = push_cart(cart, new)
    assert out.tolist() == [[5, 6, 7, -1], [2, 3, 4, 9], [-1, -1, -1, -1]]


def test_carried_cart_is_recovered_more_with_intent(sessions):
    rng = np.random.default_rng(2)
    n = 4000
    ctx = sessions.anonymous_context(key_from_generator(rng, n))
    ctx.cart = np.full((n, CART_SLOTS), -1, dtype=np.int64)
    ctx.cart[:, 0] = np.argsort(-sessions.catalog.popularity)[0]
    u = rng.random((n, CART_SLOTS))
    cold, left = recover_cart(ctx, sessions.catalog, u)
    assert np.array_equal(left[:, 0] >= 0, ~cold[:, 0]) and not cold[:, 1:].any()
    ctx.intent_offset[:] = 3.0
    warm, _ = recover_cart(ctx, sessions.catalog, u)
    assert warm[:, 0].mean() > cold[:, 0].mean() > 0
    out = sessions.visit(ctx, key_from_generator(rng, n))
    assert out.recovered.sum() > 0
    assert np.all(out.purchased[out.recovered > 0])


def test_bad_context_is_named(sessions):
    rng = np.random.default_rng(3)
    ctx = sessions.anonymous_context(key_from_generator(rng, 3))
    ctx.discount = np.array([0.0, 1.0, 0.1])
    with pytest.raises(ValueError, match=r"VisitContext.discount must be in \[0, 1\)"):
        sessions.visit(ctx, key_from_generator(rng, 3))
    with pytest.raises(ValueError, match="strategy must be one of"):
        SessionVisits(strategy="popular")


@pytest.mark.slow
def test_emulator_matches_real_sessions_of_selected_buyers(sessions):
    """Conversion of customers selected by a first purchase, intent offsets 0 / 1 / 2: emulator within 10% of real
    sessions (12,000 visits each, standard error of a rate near 0.1 about 3%)."""
    from ecomsim.lifecycle.entry import draw_entrants
    from ecomsim.shoppers.population import ShopperPopulation

    emulator = load_visit_emulator()
    rng = np.random.default_rng(11)
    ctx = draw_entrants(ShopperPopulation(sessions.catalog), np.zeros(3000, dtype=np.int64), sessions, rng).context
    for offset in (0.0, 1.0, 2.0):
        ctx.intent_offset[:] = offset
        real = np.mean([sessions.visit(ctx, key_from_generator(rng, len(ctx))).purchased.mean() for _ in range(4)])
        emu = np.mean([emulator.visit(ctx, key_from_generator(rng, len(ctx))).purchased.mean() for _ in range(4)])
        assert emu == pytest.approx(real, rel=0.10), offset
