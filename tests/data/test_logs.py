"""Log schema, cleaning rules, loaders (reference world, event CSV, OBD) and time splits."""

from __future__ import annotations

import importlib.metadata
import importlib.util

import numpy as np
import pandas as pd
import pytest

from ecomsim.data import loaders
from ecomsim.data.logs import LOG_COLUMNS, LoggingPolicy, log_reference_world, merge_logs, time_split, validate_logs
from ecomsim.data.loaders import clean_events, load_obd, obd_files, read_event_csv, read_events


def _has_obp() -> bool:
    try:
        importlib.metadata.distribution("obp")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


needs_obp = pytest.mark.skipif(not _has_obp(), reason="obp not installed: pip install --no-deps obp==0.4.1")


def tiny_logs(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame({
        "session": np.arange(n) // 2, "user": np.zeros(n, dtype=int),
        "timestamp": pd.date_range("2026-01-01", periods=n, freq="1min", tz="UTC"), "channel": ["app"] * n,
        "step": np.arange(n) % 2, "position": [0] * n, "item": np.arange(n), "price": [10.0] * n, "shown": [True] * n,
        "clicked": [True, False] * (n // 2), "carted": [True, False] * (n // 2), "purchased": [False] * n,
        "left": [False, True] * (n // 2), "propensity": [0.5] * n,
    })


# ------------------------------------------------------------------ schema
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


# -------------------------------------------------------- reference world
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


# ------------------------------------------------------------ event CSVs
EVENTS = """timestamp,user,item,event,price
2024-01-01T10:00:00Z,alice,5,view,10
2024-01-01T10:01:00Z,alice,5,view,10
2024-01-01T10:01:00Z,alice,5,view,10
2024-01-01T10:02:00Z,alice,5,cart,10
2024-01-01T10:03:00Z,alice,7,view,
2024-01-01T10:05:00Z,alice,5,purchase,10
2024-01-01T12:00:00Z,alice,9,view,
2024-01-01T10:00:00Z,bob,99,view,3
"""


def write(tmp_path, text, name="events.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_event_csv_sessionises_and_reports(tmp_path):
    logs, rep = read_event_csv(write(tmp_path, EVENTS), known_items=np.array([5, 7, 9]))
    assert rep.dropped["duplicate events"] == 1
    assert rep.dropped["events on unknown items"] == 1  # bob's item 99
    assert rep.sessions == 2  # alice's 2-hour gap splits her events
    assert len(logs) == 3 and "1 duplicate events" in str(rep)
    first = logs[logs["session"] == 0].sort_values("step")
    assert first["item"].tolist() == [5, 7]
    assert first["clicked"].tolist() == [True, True]
    assert first["carted"].tolist() == [True, False] and first["purchased"].tolist() == [True, False]
    assert first["left"].tolist() == [False, True]


def test_event_csv_drops_bots(tmp_path):
    rows = ["timestamp,user,item,event"] + [f"2024-01-01T10:00:{i:02d}Z,bot,{i % 5},view" for i in range(60)]
    rows += ["2024-01-01T10:00:00Z,human,1,view", "2024-01-01T10:04:00Z,human,2,view"]
    logs, rep = read_event_csv(write(tmp_path, "\n".join(rows) + "\n"))
    assert rep.bot_sessions == 1 and rep.dropped["events in bot sessions"] == 60
    assert logs["session"].nunique() == 1 and len(logs) == 2


def test_event_csv_retailrocket_style(tmp_path):
    text = "timestamp,visitorid,event,itemid,transactionid\n1433221332117,257597,view,355908,\n" \
           "1433221400000,257597,addtocart,355908,\n1433221500000,257597,transaction,355908,4000\n"
    logs, rep = read_event_csv(write(tmp_path, text))
    assert len(logs) == 1 and bool(logs["purchased"].iloc[0]) and logs["timestamp"].iloc[0].year == 2015


@pytest.mark.parametrize(
    "text, match",
    [
        ("timestamp,user,item\n2024-01-01,a,1\n", r"events.csv: missing columns \['event'\]"),
        ("timestamp,user,item,event\n2024-01-01,a,1,view\nyesterday-ish,a,2,view\n",
         r"events.csv: row 3 column 'timestamp' has 'yesterday-ish'"),
        ("timestamp,user,item,event\n2024-01-01,a,1,wishlist\n", r"row 2 column 'event' has 'wishlist'; expected one of"),
        ("timestamp,user,item,event,price\n2024-01-01,a,1,view,-3\n", r"row 2 column 'price' has '-3'; expected a number > 0"),
        ("timestamp,user,item,event\n2024-01-01,,1,view\n", r"row 2 column 'user' is empty"),
    ],
)
def test_malformed_event_csv_names_file_row_column(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        read_events(write(tmp_path, text))


def test_event_csv_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_events(tmp_path / "nope.csv")


def test_clean_events_rejects_bad_gap():
    ev = pd.DataFrame({"timestamp": pd.to_datetime(["2024-01-01"], utc=True), "user": [1], "item": [1],
                       "event": ["view"], "price": [np.nan], "channel": ["unknown"]})
    with pytest.raises(ValueError, match="gap_minutes must be > 0, got 0"):
        clean_events(ev, gap_minutes=0)


# ------------------------------------------------------------------- OBD
def test_obd_missing_gives_install_hint(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(loaders.importlib.metadata, "distribution", missing)
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps obp==0\.4\.1"):
        obd_files()
    with pytest.raises(ValueError, match=r"campaign must be one of \['all', 'men', 'women'\], got 'kids'"):
        obd_files(campaign="kids")


@needs_obp
def test_obd_loads_without_importing_obp():
    import sys

    before = "obp" in sys.modules
    data = load_obd()
    assert ("obp" in sys.modules) == before
    f = data.frame
    assert len(f) == 10_000 and sorted(f["position"].unique()) == [0, 1, 2]
    assert f["carted"].isna().all() and f["price"].isna().all()
    assert np.isclose(f["propensity"], 1 / 80).all()  # uniform random over 80 items
    assert data.user.shape[0] == data.items.shape[0] == 10_000
    groups = data.steps()
    assert sorted(groups) == [0, 1, 2] and sum(len(g) for g in groups.values()) == 10_000
    assert importlib.util.find_spec("obp") is not None
