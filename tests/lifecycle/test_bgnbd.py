"""The BG/NBD reference model: likelihood, published CDNOW fit, expectations."""

from __future__ import annotations

import numpy as np
import pytest

from ecomsim.lifecycle.bgnbd import PUBLISHED_CDNOW, BgNbd, fit_bgnbd
from tests.lifecycle.test_data import needs_lifetimes


@needs_lifetimes
def test_reproduces_the_published_cdnow_parameters():
    from ecomsim.data.cdnow import cdnow_cohort

    c = cdnow_cohort()
    model, ll = fit_bgnbd(c.x, c.t_x, c.T)
    for name, value in PUBLISHED_CDNOW.items():  # published to 3 decimals
        assert getattr(model, name) == pytest.approx(value, abs=6e-4), name
    assert ll == pytest.approx(-9582.4, abs=0.05)  # Fader, Hardie & Lee (2005)


def test_expected_repeats_against_numeric_integration():
    # E[X(t)] by simulation of the model's own story, 200k customers
    m = BgNbd(r=0.5, alpha=5.0, a=1.2, b=3.0)
    rng = np.random.default_rng(0)
    n, t = 200_000, 20.0
    lam = rng.gamma(m.r, 1.0 / m.alpha, size=n)
    p = rng.beta(m.a, m.b, size=n)
    count = np.zeros(n)
    clock = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        clock[alive] += rng.exponential(1.0 / lam[alive])
        buys = alive & (clock <= t)
        count += buys
        alive = buys & (rng.random(n) >= p)  # drop out after a purchase
    se = count.std() / np.sqrt(n)
    assert count.mean() == pytest.approx(float(m.expected_repeats(t)), abs=4 * se)


def test_p_alive_and_conditional_expectation_properties():
    m = BgNbd(**PUBLISHED_CDNOW)
    assert m.p_alive(np.array([0]), np.array([0.0]), np.array([30.0]))[0] == 1.0  # no repeat: never seen dropping
    recent, stale = m.p_alive(np.array([3, 3]), np.array([29.0, 5.0]), np.array([30.0, 30.0]))
    assert recent > stale
    ce = m.conditional_expected(39.0, np.array([0, 2, 2]), np.array([0.0, 30.0, 5.0]), np.array([38.0, 38.0, 38.0]))
    assert ce[1] > ce[2] and ce[1] > ce[0] > 0


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="BG/NBD parameter alpha must be a finite number > 0, got -1"):
        BgNbd(r=1.0, alpha=-1, a=1.0, b=1.0)
    with pytest.raises(ValueError, match="t_x <= T"):
        fit_bgnbd(np.array([1]), np.array([5.0]), np.array([4.0]))
