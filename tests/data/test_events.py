"""Generic event CSVs: sessionisation, cleaning report, RetailRocket's format, malformed files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecomsim.data.events import clean_events, read_event_csv, read_events


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


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", r"events.csv: the file is empty; expected a header line timestamp,user,item,event"),
        (b"timestamp,user,item,event\n", r"events.csv: no event rows, only the header \['timestamp', 'user', 'item', 'event'\]"),
        ("timestamp,user,item,event\n2024-01-01,j\xe9r\xf4me,1,view\n".encode("latin-1"),
         r"events.csv: not utf-8 text \(byte 0xe9 on line 2\); convert it.*encoding='latin-1'"),
        (b"timestamp,user,item,event\n2024-01-01,a,1,view,extra,x\n", r"events.csv: line 2 has more fields than the header"),
        (b"timestamp,user,item,event\n1e400,a,1,view\n", r"row 2 column 'timestamp' has '1e400', out of range as epoch"),
        (b"timestamp,user,item,event\n99999999999999999999,a,1,view\n", r"row 2 column 'timestamp' has '99999999999999999999', "
                                                                        r"out of range as epoch milliseconds"),
        (b"timestamp,user,item,event\n2024-13-45,a,1,view\n", r"row 2 column 'timestamp' has '2024-13-45'; expected an ISO 8601"),
        (b"ts;user;item;event\n2024-01-01;a;1;view\n", r"missing columns \['timestamp', 'user', 'item', 'event'\]"),
    ],
)
def test_unreadable_event_files_name_file_and_problem(tmp_path, content, match):
    path = tmp_path / "events.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        read_events(path)


def test_event_file_in_another_encoding_and_a_directory(tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes("timestamp,user,item,event\n2024-01-01,j\xe9r\xf4me,1,view\n".encode("latin-1"))
    assert read_events(path, encoding="latin-1")["user"].tolist() == [0]
    with pytest.raises(ValueError, match=r"encoding must be a codec Python knows.*got 'klingon'"):
        read_events(path, encoding="klingon")
    with pytest.raises(IsADirectoryError, match=r"event file '.*' is a directory; expected an event CSV file"):
        read_events(tmp_path)
