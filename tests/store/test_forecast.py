"""Forecasters: the weekday-adjusted moving average, the behaviour forecast on real session demand, MAPE."""

from __future__ import annotations

import numpy as np
import pytest

from ecomsim.store import (
    BehaviorForecaster,
    ItemGroups,
    MovingAverageForecaster,
    StoreConfig,
    TrafficPlan,
    evaluate_forecaster,
    forecast_error,
)

GROUPS = ItemGroups(np.array([0, 0, 1, 1, 1, 2]), ["a", "b", "c"])
PATTERN = np.array([1.2, 1.0, 1.0, 0.9, 0.8, 0.9, 1.2])  # mean 1


def test_moving_average_recovers_a_weekday_pattern_exactly():
    item_level = np.array([1.0, 2.0, 0.5, 0.5, 1.0, 4.0])  # units per day, deseasonalised
    ma = MovingAverageForecaster(GROUPS, prior_rate=np.ones(6), window=14, season_weeks=4, min_weeks=2)
    ma.reset(2)
    np.testing.assert_allclose(ma.forecast(-1, 3), np.broadcast_to([2.0, 3.0, 1.0], (2, 3, 3)))  # the prior, flat
    for day in range(13):
        ma.observe(day, np.broadcast_to(item_level * PATTERN[day % 7], (2, 6)))
    np.testing.assert_array_equal(ma.weekday_factors(), np.ones((2, 7)))  # under min_weeks whole weeks: flat
    for day in range(13, 35):
        ma.observe(day, np.broadcast_to(item_level * PATTERN[day % 7], (2, 6)))
    np.testing.assert_allclose(ma.weekday_factors()[0], PATTERN, rtol=1e-12)
    fc = ma.forecast(34, 7)  # days 35..41: weekdays 0..6
    expected = GROUPS.totals(item_level)[None, :] * PATTERN[:, None]
    np.testing.assert_allclose(fc[0], expected, rtol=1e-12)
    with pytest.raises(ValueError, match="days must be observed in order from 0: expected day 35, got 40"):
        ma.observe(40, np.zeros((2, 6)))


def test_forecasts_use_only_the_past():
    rng = np.random.default_rng(0)
    a = rng.poisson(2.0, size=(1, 60, 6))
    b = a.copy()
    b[:, 40:] = rng.poisson(9.0, size=(1, 20, 6))  # a different future
    fa, fb = (MovingAverageForecaster(GROUPS, np.ones(6)) for _ in range(2))
    for f, d in ((fa, a), (fb, b)):
        for day in range(40):
            f.observe(day, d[:, day])
    np.testing.assert_array_equal(fa.forecast(39, 5), fb.forecast(39, 5))


def test_item_weights_follow_item_demand():
    ma = MovingAverageForecaster(GROUPS, prior_rate=np.ones(6), item_halflife=7.0)
    ma.reset(1)
    for day in range(200):
        ma.observe(day, np.array([[0, 3, 1, 1, 1, 5]]))
    np.testing.assert_allclose(ma.item_weights()[0], [0, 3, 1, 1, 1, 5], atol=1e-6)


def test_behavior_forecast_is_traffic_times_rates():
    config = StoreConfig(sessions_per_day=1000, promotion_days=[10], promotion_lift=2.0)
    traffic = TrafficPlan(config)
    rates = np.array([0.001, 0.002, 0.0, 0.003, 0.001, 0.01])  # units per session
    fc = BehaviorForecaster(GROUPS, traffic, lambda: rates)
    fc.reset(2)
    out = fc.forecast(7, 4)  # days 8..11, day 10 a promotion
    expected = traffic.expected(np.arange(8, 12))[:, None] * GROUPS.totals(rates)[None, :]
    np.testing.assert_allclose(out, np.broadcast_to(expected, (2, 4, 3)))
    assert out[0, 2, 0] == pytest.approx(2.0 * 1000 * traffic.weekday_factors[3] * 0.003)
    bad = BehaviorForecaster.__new__(BehaviorForecaster)
    with pytest.raises(ValueError, match=r"purchase_rates\(\) must return \(6,\) or \(1, 6\) finite units per session >= 0"):
        BehaviorForecaster.__init__(bad, GROUPS, traffic, lambda: np.array([1.0, -1.0]))


def test_mape_leaves_zero_days_out_and_wape_keeps_them():
    err = forecast_error(np.array([0, 2, 4, 1]), np.array([1.0, 1.0, 4.0, 0.0]))
    assert err.mape == pytest.approx((0.5 + 0.0 + 1.0) / 3)
    assert err.wape == pytest.approx((1 + 1 + 0 + 1) / 7)
    assert (err.num_scored, err.num_zero) == (3, 1)
    none = forecast_error(np.zeros(3), np.ones(3))
    assert np.isnan(none.mape) and np.isnan(none.wape) and none.num_zero == 3
    with pytest.raises(ValueError, match=r"forecast must have the shape of actual \(3,\), got \(2,\)"):
        forecast_error(np.zeros(3), np.zeros(2))


def test_behavior_forecast_is_unbiased_on_held_out_session_demand(session_demand):
    """Reference-world shoppers, popularity policy: purchase rates measured on two training trajectories
    (~34k sessions) predict the held-out trajectories' total demand per group. Tolerance: the held-out
    total within 4 standard errors, the variance of a total being at most ~2x its mean (Poisson
    counts, over-dispersed by the rare multi-purchase session and by the rates' own estimation error), plus
    one unit for the groups that sell almost nothing."""
    sd = session_demand
    fc = BehaviorForecaster(sd.groups, sd.traffic, lambda: sd.rates)
    fc.reset(1)
    days = sd.test.shape[1]
    predicted = fc.forecast(-1, days)[0].sum(axis=0) * len(sd.test)  # (G,) units, all held-out trajectories
    actual = sd.groups.totals(sd.test.sum(axis=(0, 1)))
    assert (np.abs(actual - predicted) <= 4 * np.sqrt(2.0 * predicted) + 1).all(), (actual, predicted)
    ma = MovingAverageForecaster(sd.groups, sd.daily_rate)
    for f in (fc, ma):
        err = evaluate_forecaster(f, sd.test, first_day=28)
        assert 0.0 < err.mape < 2.0 and err.num_scored > 0  # finite, scored on the held-out days
