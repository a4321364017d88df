"""Ordering groups: builders, group sums, and the exact largest-remainder split of group orders."""

from __future__ import annotations

import numpy as np
import pytest

from ecomsim.catalog import load_catalog
from ecomsim.store import ItemGroups, StoreConfig


def random_groups(rng: np.random.Generator, num_items: int, num_groups: int) -> ItemGroups:
    group_of = np.concatenate([np.arange(num_groups), rng.integers(0, num_groups, num_items - num_groups)])
    return ItemGroups(rng.permutation(group_of), [f"g{g}" for g in range(num_groups)])


@pytest.mark.parametrize("seed", range(6))
def test_split_sums_exactly_and_stays_within_one_unit(seed):
    rng = np.random.default_rng(seed)
    groups = random_groups(rng, 400, 7)
    q = rng.integers(0, 5000, size=(20, 7))
    q[rng.random(q.shape) < 0.3] = 0
    weights = rng.gamma(0.3, size=(20, 400))  # skewed, many near zero
    weights[rng.random(weights.shape) < 0.2] = 0.0
    weights[3, groups.group_of == 2] = 0.0  # a group with no forecast: split equally
    units = groups.split(q, weights)
    assert units.dtype == np.int64 and (units >= 0).all()
    np.testing.assert_array_equal(groups.totals(units), q)
    total = groups.totals(weights)[:, groups.group_of]
    share = np.divide(weights, total, out=np.broadcast_to(1.0 / groups.sizes[groups.group_of], weights.shape).copy(),
                      where=total > 0)
    quota = q[:, groups.group_of] * share
    assert (np.abs(units - quota) < 1.0 + 1e-9).all()  # largest remainder: never a full unit from the quota
    # units go where the forecast is: no unit to a zero-weight item of a group with weight
    zero_weight_in_weighted_group = (weights == 0) & (total > 0)
    assert (units[zero_weight_in_weighted_group] == 0).all()


def test_split_known_values_and_ties():
    groups = ItemGroups(np.array([0, 0, 0, 1, 1]), ["a", "b"])
    # quotas 10 * (0.5, 0.3, 0.2) = 5, 3, 2 exactly; group b: 3 units over equal weights -> 2, 1 (tie: lower index)
    units = groups.split(np.array([[10, 3]]), np.array([5.0, 3.0, 2.0, 1.0, 1.0]))
    np.testing.assert_array_equal(units, [[5, 3, 2, 2, 1]])
    # 7 units over (1, 1, 1): 2.33 each -> 3, 2, 2 (the extra unit to the lowest index among equal remainders)
    np.testing.assert_array_equal(groups.split(np.array([[7, 0]]), np.ones(5)), [[3, 2, 2, 0, 0]])
    # remainders 0.6 / 0.3 / 0.1 of 1 unit: the largest takes it
    np.testing.assert_array_equal(groups.split(np.array([[1, 0]]), np.array([0.1, 0.6, 0.3, 0, 0])), [[0, 1, 0, 0, 0]])


def test_split_rejects_bad_input():
    groups = ItemGroups(np.array([0, 1]), ["a", "b"])
    with pytest.raises(ValueError, match="split weights must be finite and >= 0"):
        groups.split(np.array([[1, 1]]), np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match=r"group_units must be \(num_stores, num_groups=2\) units >= 0"):
        groups.split(np.array([[1, -1]]), np.ones(2))


def test_builders_and_totals():
    catalog = load_catalog("default")
    by_cat = ItemGroups.from_config(catalog, StoreConfig())
    assert by_cat.names == catalog.category_names  # every category is present in the default catalog
    np.testing.assert_array_equal(by_cat.group_of, catalog.category)
    top = ItemGroups.from_config(catalog, StoreConfig(grouping="top_n", top_n=5))
    assert top.num_groups == 6 and top.names[-1] == "rest"
    best = np.argsort(-catalog.popularity, kind="stable")[:5]
    np.testing.assert_array_equal(top.group_of[best], np.arange(5))
    assert (top.sizes[:5] == 1).all() and top.sizes[5] == catalog.num_items - 5
    values = np.random.default_rng(0).integers(0, 9, size=(3, catalog.num_items))
    expected = np.stack([values[:, catalog.category == g].sum(axis=1) for g in range(catalog.num_categories)], axis=1)
    np.testing.assert_array_equal(by_cat.totals(values), expected)
    with pytest.raises(ValueError, match="every group must hold an item; empty: \\['c'\\]"):
        ItemGroups(np.array([0, 1, 0]), ["a", "b", "c"])


def test_allocation_fills_the_items_furthest_below_their_share():
    groups = ItemGroups(np.array([0, 0, 0, 1]), ["a", "b"])
    # shares 0.5 / 0.3 / 0.2, positions 0 / 6 / 0, 10 units: after the order the group holds 16, fair shares
    # 8 / 4.8 / 3.2, needs 8 / 0 / 3.2, so 10 * (8, 0, 3.2) / 11.2 = 7.14 / 0 / 2.86 -> 7 / 0 / 3
    units = groups.allocate(np.array([[10, 0]]), np.array([5.0, 3.0, 2.0, 1.0]), np.array([[0, 6, 0, 4]]))
    np.testing.assert_array_equal(units, [[7, 0, 3, 0]])


@pytest.mark.parametrize("seed", range(4))
def test_allocation_never_exceeds_a_need_and_reaches_the_shares(seed):
    rng = np.random.default_rng(seed)
    groups = random_groups(rng, 200, 5)
    shares = rng.gamma(0.5, size=(10, 200))
    position = rng.integers(0, 30, size=(10, 200))
    q = rng.integers(0, 2000, size=(10, 5))
    units = groups.allocate(q, shares, position)
    np.testing.assert_array_equal(groups.totals(units), q)
    share = shares / groups.totals(shares)[:, groups.group_of]
    need = np.maximum(0.0, share * (groups.totals(position) + q)[:, groups.group_of] - position)
    assert (units < need + 1.0).all()  # never a full unit above the need (rounding of the split)
    assert (units[need == 0] == 0).all()  # an item at or above its share gets nothing
    # when no item is above its share, every item ends at its share to within a unit
    low = np.zeros_like(position)
    units = groups.allocate(q, shares, low)
    np.testing.assert_allclose(units, share * q[:, groups.group_of], atol=1.0)
