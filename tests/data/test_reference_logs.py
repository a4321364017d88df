"""The reference-world logger: schema, determinism, slates, propensities, splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecomsim.data.reference_logs import LoggingPolicy, draw_slates, log_reference_world, merge_logs


def test_reference_logger_schema_and_determinism():
    a = log_reference_world(150, seed=3, batch=64)
    b = log_reference_world(150, seed=3, batch=64)
    c = log_reference_world(150, seed=4, batch=64)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert not a.frame["clicked"].equals(c.frame["clicked"]) or len(a.frame) != len(c.frame)
    f = a.frame
    assert f["session"].nunique() == 150
    assert ((f["propensity"] > 0) & (f["propensity"] <= 1)).all()
    # every session ends: its last step either left or hit max_steps
    last = f.sort_values(["session", "step"]).groupby("session").tail(1)
    assert (last["left"] | (last["step"] == 49)).all()
    steps = a.steps[1]
    assert len(steps) == len(f) and steps.user.shape[0] == steps.items.shape[0]
    np.testing.assert_array_equal(steps.click[:, 0], f["clicked"].to_numpy(dtype=bool))
    assert ((steps.ref_click >= 0) & (steps.ref_click <= 1)).all()


def test_reference_logger_slates_and_split():
    s = log_reference_world(60, seed=0, slate_size=4, batch=32, first_session=1000)
    assert sorted(s.frame["position"].unique()) == [0, 1, 2, 3]
    assert s.steps[4].items.shape[1] == 4
    one = log_reference_world(60, seed=1)
    merged = merge_logs([one, s])
    train, val, test = merged.split((0.5, 0.25, 0.25))
    sessions = [set(p.frame["session"]) for p in (train, val, test)]
    assert sum(map(len, sessions)) == 120 and not (sessions[0] & sessions[2])
    # both slate sizes arrive over the same period, so every split holds both
    assert all(set(p.steps) == {1, 4} and all(len(x) > 0 for x in p.steps.values()) for p in (train, val, test))


def test_logging_policy_validation():
    with pytest.raises(ValueError, match=r"behaviour must be one of .* got 'oracle'"):
        LoggingPolicy(mix=(("oracle", 1.0),))
    with pytest.raises(ValueError, match=r"epsilon must be in \(0, 1\], got 0"):
        LoggingPolicy(epsilon=0)


def test_plackett_luce_slates_and_propensities():
    """Slots are distinct; the propensity is the slot's probability given the slots above it."""
    probs = np.array([[0.5, 0.3, 0.2, 0.0], [0.25, 0.25, 0.25, 0.25]])
    slots, prop = draw_slates(probs, 3, np.array([[0.1, 0.9, 0.5], [0.99, 0.0, 0.6]]))
    assert slots.tolist() == [[0, 2, 1], [3, 0, 2]]
    np.testing.assert_allclose(prop, [[0.5, 0.2 / 0.5, 1.0], [0.25, 1 / 3, 0.5]])


def _digest(*parts) -> str:
    import hashlib

    h = hashlib.sha256()
    for a in parts:
        if isinstance(a, str):
            h.update(a.encode())
        else:
            a = np.ascontiguousarray(a)
            h.update(str(a.dtype).encode())
            h.update(str(a.shape).encode())
            h.update(a.tobytes())
    return h.hexdigest()[:16]


def test_reference_logs_are_bit_identical_to_the_recorded_release():
    """Frame and step arrays of a seeded run, hashed; recorded on 5d002e9 (before the logger was split up)."""
    from dataclasses import fields

    logs = log_reference_world(300, seed=3, batch=64)
    assert _digest(logs.frame.to_csv(index=False)) == "cea5fec09b1ab113"
    assert _digest(*[getattr(logs.steps[1], f.name) for f in fields(logs.steps[1])]) == "deb2b1d5c2360486"
    slate = log_reference_world(200, seed=1, slate_size=4, batch=50, first_session=1000)
    assert _digest(slate.frame.to_csv(index=False)) == "6536566d3690c0c2"
    assert _digest(*[getattr(slate.steps[4], f.name) for f in fields(slate.steps[4])]) == "c772b4a84e3c0531"
