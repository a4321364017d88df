"""Generic event CSVs (RetailRocket-style exports) into the tidy schema, sessionised and cleaned.

:func:`read_event_csv` reads an event export (``timestamp, user, item, event[,
price][, channel]``, events ``view`` / ``cart`` / ``purchase``; RetailRocket's
``addtocart`` / ``transaction`` are accepted too), sessionises it by an inactivity
gap and cleans it (:func:`clean_events`): one tidy row (``ecomsim.data.schema``) per
item a session touched.

Cleaning rules, each counted in a :class:`CleaningReport`: exact duplicate events;
events on items not in the known catalog; sessions from bots (more events than
``max_session_events``, or faster than ``max_events_per_minute`` over at least
``bot_min_events`` events). A malformed file fails naming the file, the row (as
a line number of the file) and the column: an empty file, a header without events,
text that is not in the given encoding (UTF-8 by default; pass ``encoding=`` for
another), missing columns, unparsable or out-of-range times, a directory.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ecomsim.data.schema import LOG_CHANNELS, validate_logs

EVENT_ALIASES = {"view": "view", "click": "view", "cart": "cart", "addtocart": "cart", "add_to_cart": "cart",
                 "purchase": "purchase", "transaction": "purchase", "buy": "purchase"}


@dataclass
class CleaningReport:
    """What cleaning dropped and why (counts of events or sessions)."""

    events_in: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    sessions: int = 0
    bot_sessions: int = 0
    rows_out: int = 0

    def __str__(self) -> str:
        parts = ", ".join(f"{v} {k}" for k, v in self.dropped.items()) or "nothing"
        return (f"{self.events_in} events in; dropped {parts}; {self.sessions} sessions kept "
                f"({self.bot_sessions} bot sessions removed); {self.rows_out} log rows")


TIME_HELP = "expected an ISO 8601 time or epoch seconds / milliseconds between 1677 and 2262"


def _parse_time(col: pd.Series, path: str) -> pd.Series:
    num = pd.to_numeric(col, errors="coerce")
    if num.notna().all():
        unit = "ms" if num.abs().max() > 1e11 else "s"  # RetailRocket exports epoch milliseconds
        ns = num.to_numpy(np.float64) * (1e6 if unit == "ms" else 1e9)
        bad = ~np.isfinite(ns) | (np.abs(ns) >= 9.2e18)  # datetime64[ns] spans about 1677-2262
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"{path}: row {row + 2} column 'timestamp' has {col.iloc[row]!r}, out of range as epoch "
                             f"{'milliseconds' if unit == 'ms' else 'seconds'}; {TIME_HELP}")
        return pd.to_datetime(num, unit=unit, utc=True)
    t = pd.to_datetime(col, utc=True, errors="coerce", format="mixed")
    bad = t.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{path}: row {row + 2} column 'timestamp' has {col.iloc[row]!r}; {TIME_HELP}")
    return t


def _as_ids(col: pd.Series, name: str, path: str) -> np.ndarray:
    blank = col.isna() | (col.astype(str).str.strip() == "")
    if blank.any():
        row = int(np.argmax(blank.to_numpy()))
        raise ValueError(f"{path}: row {row + 2} column {name!r} is empty; expected an id")
    num = pd.to_numeric(col, errors="coerce")
    if num.notna().all() and (num == np.round(num)).all():
        return num.to_numpy(np.int64)
    return pd.factorize(col.astype(str))[0].astype(np.int64)  # string ids become dense integer codes


def _read_csv(path: str, encoding: str) -> pd.DataFrame:
    """The raw CSV as strings; errors name the file and say what is wrong with it."""
    try:
        with warnings.catch_warnings():
            # without index_col=False pandas silently turns the extra fields of a long first row into an index
            warnings.simplefilter("error", pd.errors.ParserWarning)
            raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding=encoding, index_col=False)
    except pd.errors.ParserWarning:
        raise ValueError(f"{path}: line 2 has more fields than the header line; expected {COLUMNS_HELP}") from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the file is empty; expected a header line {COLUMNS_HELP} and event rows") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not {encoding} text ({_bad_byte(path, encoding) or exc.reason}); convert it, e.g. "
                         f"`iconv -f latin1 -t utf-8`, or pass its encoding (read_events(path, encoding='latin-1'))") from None
    except LookupError:
        raise ValueError(f"encoding must be a codec Python knows (e.g. 'utf-8', 'latin-1'), got {encoding!r}") from None
    except pd.errors.ParserError as exc:
        raise ValueError(f"{path}: not a readable CSV: {exc}") from None
    if raw.empty:
        raise ValueError(f"{path}: no event rows, only the header {list(raw.columns)}")
    return raw


def _bad_byte(path: str, encoding: str) -> str:
    """Where the first byte that does not decode sits (line and byte), found by decoding line by line."""
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError as exc:
                return f"byte {line[exc.start]:#04x} on line {number}"
    return ""


COLUMNS_HELP = "timestamp,user,item,event[,price][,channel]"


def read_events(path: str | Path, encoding: str = "utf-8") -> pd.DataFrame:
    """Read and validate an event CSV into columns timestamp, user, item, event, price, channel.

    Args:
        path: the CSV file.
        encoding: its text encoding (exports from spreadsheets are often ``latin-1`` or ``cp1252``).
    """
    from ecomsim.cards import check_file

    path = str(check_file(path, "event file", "an event CSV file"))
    raw = _read_csv(path, encoding)
    raw.columns = [c.strip().lower() for c in raw.columns]
    raw = raw.rename(columns={"visitorid": "user", "itemid": "item", "user_id": "user", "item_id": "item"})
    missing = [c for c in ("timestamp", "user", "item", "event") if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; expected {COLUMNS_HELP}, got {list(raw.columns)}")
    ev = raw["event"].astype(str).str.strip().str.lower().map(EVENT_ALIASES)
    if ev.isna().any():
        row = int(np.argmax(ev.isna().to_numpy()))
        raise ValueError(f"{path}: row {row + 2} column 'event' has {raw['event'].iloc[row]!r}; "
                         f"expected one of {sorted(set(EVENT_ALIASES))}")
    out = pd.DataFrame({"timestamp": _parse_time(raw["timestamp"], path), "user": _as_ids(raw["user"], "user", path),
                        "item": _as_ids(raw["item"], "item", path), "event": ev.to_numpy()})
    if "price" in raw.columns:
        price = pd.to_numeric(raw["price"], errors="coerce")
        bad = (raw["price"].notna() & (price.isna() | (price <= 0))).to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"{path}: row {row + 2} column 'price' has {raw['price'].iloc[row]!r}; expected a number > 0 or empty")
        out["price"] = price.to_numpy(np.float64)
    else:
        out["price"] = np.nan
    if "channel" in raw.columns:
        ch = raw["channel"].fillna("unknown").str.strip().str.lower()
        bad = (~ch.isin(LOG_CHANNELS)).to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"{path}: row {row + 2} column 'channel' has {raw['channel'].iloc[row]!r}; "
                             f"expected one of {list(LOG_CHANNELS)} or empty")
        out["channel"] = ch.to_numpy()
    else:
        out["channel"] = "unknown"
    return out


def clean_events(
    events: pd.DataFrame,
    known_items: np.ndarray | None = None,
    gap_minutes: float = 30.0,
    max_events_per_minute: float = 30.0,
    bot_min_events: int = 10,
    max_session_events: int = 500,
) -> tuple[pd.DataFrame, CleaningReport]:
    """Dedupe, drop unknown items, sessionise by an inactivity gap, drop bot sessions.

    Returns the kept events with a ``session`` column, and the report.
    """
    if not gap_minutes > 0:
        raise ValueError(f"gap_minutes must be > 0, got {gap_minutes}")
    rep = CleaningReport(events_in=len(events))
    ev = events.drop_duplicates(subset=["timestamp", "user", "item", "event"])
    rep.dropped["duplicate events"] = len(events) - len(ev)
    if known_items is not None:
        keep = ev["item"].isin(np.asarray(known_items))
        rep.dropped["events on unknown items"] = int((~keep).sum())
        ev = ev[keep]
    ev = ev.sort_values(["user", "timestamp"], kind="stable").reset_index(drop=True)
    new = (ev["user"] != ev["user"].shift()) | (ev["timestamp"].diff() > pd.Timedelta(minutes=gap_minutes))
    ev["session"] = np.cumsum(new.to_numpy()) - 1
    g = ev.groupby("session")["timestamp"]
    size = g.size()
    minutes = (g.max() - g.min()).dt.total_seconds() / 60.0
    rate = size / np.maximum(minutes, 1.0 / 60.0)
    bots = size.index[(size > max_session_events) | ((size >= bot_min_events) & (rate > max_events_per_minute))]
    is_bot = ev["session"].isin(bots)
    rep.dropped["events in bot sessions"] = int(is_bot.sum())
    rep.bot_sessions = len(bots)
    ev = ev[~is_bot].copy()
    ev["session"] = pd.factorize(ev["session"])[0]
    rep.sessions = int(ev["session"].nunique())
    return ev.reset_index(drop=True), rep


def events_to_logs(ev: pd.DataFrame) -> pd.DataFrame:
    """Cleaned, sessionised events -> tidy logs: one row per item a session touched, in order of first touch."""
    ev = ev.assign(view=ev["event"] == "view", cart=ev["event"] == "cart", buy=ev["event"] == "purchase")
    g = ev.groupby(["session", "item"], sort=False)
    rows = g.agg(timestamp=("timestamp", "min"), user=("user", "first"), channel=("channel", "first"),
                 price=("price", "last"), view=("view", "any"), cart=("cart", "any"), buy=("buy", "any")).reset_index()
    rows = rows.sort_values(["session", "timestamp"], kind="stable").reset_index(drop=True)
    rows["step"] = rows.groupby("session").cumcount()
    last = rows.groupby("session")["step"].transform("max") == rows["step"]
    carted = rows["cart"] | rows["buy"]  # a purchase without a cart event still went through the cart
    return validate_logs(pd.DataFrame({
        "session": rows["session"], "user": rows["user"], "timestamp": rows["timestamp"], "channel": rows["channel"],
        "step": rows["step"], "position": pd.NA, "item": rows["item"], "price": rows["price"], "shown": True,
        # an item page view is a click in our funnel; a cart or purchase implies the item was opened
        "clicked": rows["view"] | carted, "carted": carted, "purchased": rows["buy"], "left": last,
        "propensity": np.nan,
    }), "event logs")


def read_event_csv(path: str | Path, known_items: np.ndarray | None = None, encoding: str = "utf-8",
                   **clean_kwargs) -> tuple[pd.DataFrame, CleaningReport]:
    """Read, clean and sessionise an event CSV into tidy logs (see module docstring)."""
    ev, rep = clean_events(read_events(path, encoding), known_items, **clean_kwargs)
    logs = events_to_logs(ev)
    rep.rows_out = len(logs)
    return logs, rep
