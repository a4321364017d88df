"""The tidy log schema: validation messages, canonical dtypes, the time split; no simulator behind it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from ecomsim.data.schema import LOG_COLUMNS, time_split, validate_logs


def tiny_logs(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame({
        "session": np.arange(n) // 2, "user": np.zeros(n, dtype=int),
        "timestamp": pd.date_range("2026-01-01", periods=n, freq="1min", tz="UTC"), "channel": ["app"] * n,
        "step": np.arange(n) % 2, "position": [0] * n, "item": np.arange(n), "price": [10.0] * n, "shown": [True] * n,
        "clicked": [True, False] * (n // 2), "carted": [True, False] * (n // 2), "purchased": [False] * n,
        "left": [False, True] * (n // 2), "propensity": [0.5] * n,
    })


def test_validate_canonical_dtypes_and_order():
    out = validate_logs(tiny_logs().iloc[:, ::-1])
    assert list(out.columns) == list(LOG_COLUMNS)
    assert str(out["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert str(out["clicked"].dtype) == "boolean" and str(out["position"].dtype) == "Int64"


def test_validate_missing_column():
    with pytest.raises(ValueError, match=r"mylogs: missing columns \['propensity'\]"):
        validate_logs(tiny_logs().drop(columns="propensity"), "mylogs")


@pytest.mark.parametrize(
    "column, value, match",
    [
        ("step", -1, r"column 'step' at row 1 has value -1; expected >= 0"),
        ("price", 0.0, r"column 'price' at row 1 has value 0.0; expected > 0 or NaN"),
        ("propensity", 1.5, r"column 'propensity' at row 1 has value 1.5; expected in \(0, 1\]"),
        ("channel", "tv", r"column 'channel' at row 1 has value 'tv'; expected one of"),
        ("carted", True, r"column 'carted' at row 1 .*\(carted implies clicked\)"),
    ],
)
def test_validate_bad_values_name_row_and_value(column, value, match):
    df = tiny_logs()
    df[column] = df[column].astype(object)
    df.loc[1, column] = value
    with pytest.raises(ValueError, match=match):
        validate_logs(df)


def test_time_split_keeps_sessions_whole_and_ordered():
    df = validate_logs(tiny_logs(20))
    train, val, test = time_split(df, (0.6, 0.2, 0.2))
    assert len(train) + len(val) + len(test) == 20
    ids = [set(p["session"]) for p in (train, val, test)]
    assert not (ids[0] & ids[1]) and not (ids[1] & ids[2])
    assert train["timestamp"].max() < val["timestamp"].min() <= val["timestamp"].max() < test["timestamp"].min()
    with pytest.raises(ValueError, match="fractions must be three"):
        time_split(df, (0.5, 0.6, 0.1))


def test_schema_module_does_not_load_the_simulator():
    code = ("import sys, ecomsim.data.schema, ecomsim.data.events; "
            "print(sorted(m for m in sys.modules if m.startswith(('ecomsim.sim', 'ecomsim.shoppers', 'torch'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
