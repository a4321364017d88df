"""Demand recorded from real sessions of the env: reproducible, numbered by start, plausible per session."""

from __future__ import annotations

import numpy as np
import pytest

from ecomsim.store.sessions import purchase_rates, record_session_demand
from tests.store.conftest import popularity_env


def test_recorded_demand_is_seeded_and_split_by_session_start():
    env, act = popularity_env(num_envs=64)
    a = record_session_demand(env, act, np.array([150, 150]), seed=11)
    b = record_session_demand(env, act, np.array([150, 150]), seed=11)
    c = record_session_demand(env, act, np.array([300]), seed=11)
    d = record_session_demand(env, act, np.array([150, 150]), seed=5000)
    np.testing.assert_array_equal(a, b)
    # the same 300 sessions whatever the days: numbering by start does not depend on the split
    np.testing.assert_array_equal(a.sum(axis=0), c[0])
    assert not np.array_equal(a, d)
    # sessions 0..149 alone are day 0 of the two-day run
    np.testing.assert_array_equal(record_session_demand(env, act, np.array([150]), seed=11)[0], a[0])
    assert record_session_demand(env, act, np.array([0, 0]), seed=11).sum() == 0


def test_purchases_per_session_are_the_reference_worlds(session_demand):
    """Units bought per session under the popularity policy: the reference world's conversion (~2-3% of
    sessions, a few with more than one purchase) gives 0.02-0.07 units per session (tolerance: the
    range, over ~34k training sessions)."""
    per_session = session_demand.rates.sum()
    assert 0.02 < per_session < 0.07
    with pytest.raises(ValueError, match=r"sessions must have shape \(2, 56\)"):
        purchase_rates(session_demand.train, session_demand.train_sessions[:, :3])
    with pytest.raises(ValueError, match=r"sessions_per_day must be a 1-d array of integer sessions >= 0"):
        env, act = popularity_env(num_envs=8)
        record_session_demand(env, act, np.array([3.5]), seed=0)
