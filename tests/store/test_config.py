"""Store options: every bad value is an error naming the field and the value; the traffic plan."""

from __future__ import annotations

import numpy as np
import pytest

from ecomsim.catalog import load_catalog
from ecomsim.store import ItemGroups, StoreConfig, StoreItems, StoreState, TrafficPlan


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"lead_time_days": -1}, ValueError, r"lead_time_days must be in \[1, 365\], got -1"),
        ({"lead_time_days": 0}, ValueError, r"lead_time_days must be in \[1, 365\], got 0"),
        ({"lead_time_days": [3, -2]}, ValueError, r"lead_time_days\[1\] must be in \[1, 365\], got -2"),
        ({"lead_time_days": 2.5}, TypeError, r"lead_time_days must be an integer in \[1, 365\], got 2.5"),
        ({"sessions_per_day": 0}, ValueError, r"sessions_per_day must be in \[1, 100000000\], got 0"),
        ({"holding_cost_rate": -0.01}, ValueError, r"holding_cost_rate must be in \[0.0, 1.0\], got -0.01"),
        ({"holding_cost_rate": float("nan")}, ValueError, r"holding_cost_rate must be in \[0.0, 1.0\], got nan"),
        ({"order_fixed_cost": -5.0}, ValueError, r"order_fixed_cost must be in \[0.0, .*\], got -5.0"),
        ({"lost_margin_weight": -1.0}, ValueError, r"lost_margin_weight must be in \[0.0, .*\], got -1.0"),
        ({"margin": 1.0}, ValueError, r"margin must be in \(0, 1\) \(unit cost = price \* \(1 - margin\)\), got 1.0"),
        ({"margin": 0.0}, ValueError, r"margin must be in \(0, 1\)"),
        ({"category_margins": {"shoes": 1.5}}, ValueError, r"category_margins\['shoes'\] must be a number in \(0, 1\), got 1.5"),
        ({"max_order_units": 0}, ValueError, r"max_order_units must be in \[1, .*\], got 0"),
        ({"initial_fill_days": -3.0}, ValueError, r"initial_fill_days must be in \[0.0, 3650.0\], got -3.0"),
        ({"grouping": "categroy"}, ValueError, r"grouping must be one of \['category', 'top_n'\], got 'categroy'. Did you mean 'category'\?"),
        ({"weekday_factors": [1, 1, 1]}, ValueError, r"weekday_factors must be 7 positive finite numbers, Monday first, got \[1, 1, 1\]"),
        ({"weekday_factors": [1, 1, 1, 1, 1, 1, 0]}, ValueError, r"weekday_factors must be 7 positive"),
        ({"promotion_days": [3, 200]}, ValueError, r"promotion_days entry must be in \[0, 179\], got 200"),
        ({"promotion_days": [3, 3]}, ValueError, r"promotion_days must not repeat a day, got \[3, 3\]"),
        ({"promotion_lift": 0.5}, ValueError, r"promotion_lift must be in \[1.0, 100.0\], got 0.5"),
        ({"horizon_days": 0}, ValueError, r"horizon_days must be in \[1, 100000\], got 0"),
    ],
)
def test_bad_options_name_field_and_value(kwargs, error, match):
    with pytest.raises(error, match=match):
        StoreConfig(**kwargs)


def test_unknown_key_suggests():
    with pytest.raises(TypeError, match=r"unknown store config key 'lead_time'. Did you mean 'lead_time_days'\?"):
        StoreConfig.from_kwargs({"lead_time": 3})
    assert StoreConfig.from_kwargs({"lead_time_days": 5}).lead_time_days == 5


def test_catalog_dependent_options():
    catalog = load_catalog("default")
    with pytest.raises(ValueError, match=r"category_margins has unknown category 'shoe'; .* Did you mean 'shoes'\?"):
        StoreItems.from_catalog(catalog, StoreConfig(category_margins={"shoe": 0.4}))
    groups = ItemGroups.by_category(catalog)
    config = StoreConfig(lead_time_days=[2, 3])
    with pytest.raises(ValueError, match=rf"lead_time_days must have one entry per group \(num_groups={groups.num_groups}\), got 2"):
        StoreState(config, StoreItems.from_catalog(catalog, config), groups)
    with pytest.raises(ValueError, match=r"top_n must be in \[1, num_items - 1 = 1999\]"):
        ItemGroups.top_n(catalog, 2000)


def test_margins_give_unit_costs():
    catalog = load_catalog("default")
    items = StoreItems.from_catalog(catalog, StoreConfig(margin=0.25, category_margins={"electronics": 0.1}))
    electronics = catalog.category == catalog.category_names.index("electronics")
    np.testing.assert_allclose(items.unit_cost[electronics], catalog.price[electronics] * 0.9)
    np.testing.assert_allclose(items.unit_cost[~electronics], catalog.price[~electronics] * 0.75)
    np.testing.assert_allclose(items.unit_margin, catalog.price - items.unit_cost)


def test_traffic_plan_weekdays_and_promotions():
    plan = TrafficPlan(StoreConfig(sessions_per_day=1000, weekday_factors=[2, 1, 1, 1, 1, 1, 1], promotion_days=[8],
                                   promotion_lift=2.0))
    expected = plan.expected(np.arange(14))
    np.testing.assert_allclose(expected[:7], 1000.0 * np.array([2, 1, 1, 1, 1, 1, 1]) / (8 / 7))
    assert expected[8] == pytest.approx(2.0 * expected[1])  # day 8 is a Tuesday with the promotion
    assert expected[7] == pytest.approx(expected[0])
    a = plan.sample(np.arange(100), np.random.default_rng(5))
    b = plan.sample(np.arange(100), np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    # Poisson around the plan: the mean over 100 days within 4 standard errors (tolerance)
    mean_expected = plan.expected(np.arange(100)).mean()
    assert abs(a.mean() - mean_expected) < 4 * np.sqrt(mean_expected / 100)
