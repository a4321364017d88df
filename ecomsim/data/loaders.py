"""Loaders of real interaction logs into the tidy schema of ``ecomsim.data.logs``, with cleaning.

* :func:`load_obd`: the Open Bandit Dataset sample (ZOZOTOWN fashion e-commerce,
  uniform-random logging policy, 3 positions, clicks only) that ships inside the
  ``obp`` wheel. It is an optional extra: ``pip install --no-deps obp==0.4.1``
  installs only the data-bearing package; the CSVs are found through
  ``importlib.metadata`` without importing ``obp`` (which would pull its heavy
  dependencies).
* :func:`read_event_csv`: a generic event export (``timestamp, user, item, event[,
  price][, channel]``, events ``view`` / ``cart`` / ``purchase``; RetailRocket's
  ``addtocart`` / ``transaction`` are accepted too), sessionised by an inactivity
  gap and cleaned (:func:`clean_events`), one tidy row per item a session touched.

Cleaning rules, each counted in a :class:`CleaningReport`: exact duplicate events;
events on items not in the known catalog; sessions from bots (more events than
``max_session_events``, or faster than ``max_events_per_minute`` over at least
``bot_min_events`` events). A malformed file fails naming the file, the row (as
a line number of the file) and the column.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ecomsim.data.logs import LOG_CHANNELS, StepData, validate_logs

OBD_INSTALL_HINT = "install the optional extra with `pip install --no-deps obp==0.4.1` (data only, no heavy dependencies)"
OBD_POLICIES = ("random", "bts")
OBD_CAMPAIGNS = ("all", "men", "women")
EVENT_ALIASES = {"view": "view", "click": "view", "cart": "cart", "addtocart": "cart", "add_to_cart": "cart",
                 "purchase": "purchase", "transaction": "purchase", "buy": "purchase"}


# ================================================================== OBD
def obd_files(policy: str = "random", campaign: str = "all") -> tuple[Path, Path]:
    """Paths of the OBD sample's log CSV and item-context CSV inside the installed ``obp`` wheel."""
    if policy not in OBD_POLICIES:
        raise ValueError(f"policy must be one of {list(OBD_POLICIES)}, got {policy!r}")
    if campaign not in OBD_CAMPAIGNS:
        raise ValueError(f"campaign must be one of {list(OBD_CAMPAIGNS)}, got {campaign!r}")
    try:
        dist = importlib.metadata.distribution("obp")
    except importlib.metadata.PackageNotFoundError:
        raise ModuleNotFoundError(f"the Open Bandit Dataset sample needs the 'obp' package, which is not installed; {OBD_INSTALL_HINT}") from None
    want = {f"obp/dataset/obd/{policy}/{campaign}/{campaign}.csv": "log",
            f"obp/dataset/obd/{policy}/{campaign}/item_context.csv": "items"}
    found = {want[str(f).replace("\\", "/")]: Path(str(dist.locate_file(f))) for f in (dist.files or [])
             if str(f).replace("\\", "/") in want}
    missing = [name for name in want if want[name] not in found or not found[want[name]].is_file()]
    if missing:
        raise FileNotFoundError(f"the installed obp {dist.version} lacks the OBD sample files {missing}; {OBD_INSTALL_HINT}")
    return found["log"], found["items"]


@dataclass
class ObdData:
    """The OBD sample: the tidy frame plus model features, one row per impression.

    ``user`` ``(n, U)`` one-hot user features; ``items`` ``(n, F)`` item features
    (numeric feature, one-hot categorical features, the user's affinity with the item);
    ``position`` ``(n,)`` 0-based slot; ``click`` ``(n,)``.
    """

    frame: pd.DataFrame
    user: np.ndarray
    items: np.ndarray
    position: np.ndarray
    click: np.ndarray
    user_names: list[str]
    item_names: list[str]

    def steps(self, mask: np.ndarray | None = None) -> dict[int, StepData]:
        """Step arrays for :func:`ecomsim.shoppers.training.train_behavior`, one group per position."""
        mask = np.ones(len(self.click), dtype=bool) if mask is None else mask
        out = {}
        for pos in np.unique(self.position):
            m = mask & (self.position == pos)
            s = int(m.sum())
            if s == 0:
                continue
            z = np.zeros((s, 1), dtype=bool)
            nan = np.full((s, 1), np.nan)
            out[int(pos)] = StepData(
                session=self.frame["session"].to_numpy()[m], step=np.zeros(s, dtype=np.int64), user=self.user[m],
                items=self.items[m][:, None, :], item_ids=self.frame["item"].to_numpy()[m][:, None],
                positions=np.array([pos], dtype=np.float32), channel=np.zeros(s, dtype=np.int64),
                click=self.click[m][:, None], cart=z, purchase=z, left=z[:, 0], level=np.zeros(s, dtype=np.int64),
                ref_click=nan, ref_cart=nan, ref_purchase=nan, ref_leave=np.full((s, 3), np.nan))
        return out


def load_obd(policy: str = "random", campaign: str = "all") -> ObdData:
    """Load the OBD sample shipped in the ``obp`` wheel (see module docstring)."""
    log_path, item_path = obd_files(policy, campaign)
    raw = pd.read_csv(log_path, index_col=0)
    items = pd.read_csv(item_path, index_col=0)
    need = ["timestamp", "item_id", "position", "click", "propensity_score"]
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise ValueError(f"{log_path}: missing columns {missing}; expected the OBD format with {need}")
    user_cols = [c for c in raw.columns if c.startswith("user_feature_")]
    aff_cols = [c for c in raw.columns if c.startswith("user-item_affinity_")]
    user = pd.get_dummies(raw[user_cols].astype(str), dtype=np.float32)
    cat_cols = [c for c in items.columns if c.startswith("item_feature_") and not pd.api.types.is_numeric_dtype(items[c])]
    num_cols = [c for c in items.columns if c.startswith("item_feature_") and c not in cat_cols]
    item_table = pd.concat([items[["item_id"]], items[num_cols].astype(np.float32),
                            pd.get_dummies(items[cat_cols], dtype=np.float32)], axis=1).set_index("item_id")
    item_ids = raw["item_id"].to_numpy()
    unknown = ~np.isin(item_ids, item_table.index.to_numpy())
    if unknown.any():
        row = int(np.argmax(unknown))
        raise ValueError(f"{log_path}: row {row + 2} column 'item_id' has {item_ids[row]} not in {item_path}")
    item_feat = item_table.loc[item_ids].to_numpy(np.float32)
    aff = raw[aff_cols].to_numpy(np.float32)[np.arange(len(raw)), item_ids] if aff_cols else np.zeros(len(raw), np.float32)
    feats = np.concatenate([item_feat, np.log1p(aff)[:, None]], axis=1)
    position = raw["position"].to_numpy() - raw["position"].min()  # OBD numbers slots from 1
    user_key = raw[user_cols].astype(str).agg("|".join, axis=1)
    frame = pd.DataFrame({
        "session": np.arange(len(raw), dtype=np.int64),  # OBD rows are independent impressions
        "user": pd.factorize(user_key)[0].astype(np.int64),
        "timestamp": pd.to_datetime(raw["timestamp"], utc=True, format="ISO8601").to_numpy(),
        "channel": "unknown",
        "step": 0,
        "position": position,
        "item": item_ids,
        "price": np.nan,
        "shown": True,
        "clicked": raw["click"].astype(bool).to_numpy(),
        "carted": pd.NA,
        "purchased": pd.NA,
        "left": pd.NA,
        "propensity": raw["propensity_score"].to_numpy(),
    })
    return ObdData(validate_logs(frame, str(log_path)), user.to_numpy(np.float32), feats, position.astype(np.int64),
                   raw["click"].to_numpy().astype(bool), list(user.columns), list(item_table.columns) + ["log_affinity"])


# ========================================================== event CSVs
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


def _parse_time(col: pd.Series, path: str) -> pd.Series:
    num = pd.to_numeric(col, errors="coerce")
    if num.notna().all():
        unit = "ms" if num.abs().max() > 1e11 else "s"  # RetailRocket exports epoch milliseconds
        return pd.to_datetime(num, unit=unit, utc=True)
    t = pd.to_datetime(col, utc=True, errors="coerce", format="mixed")
    bad = t.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{path}: row {row + 2} column 'timestamp' has {col.iloc[row]!r}; "
                         "expected an ISO 8601 time or epoch seconds / milliseconds")
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


def read_events(path: str | Path) -> pd.DataFrame:
    """Read and validate an event CSV into columns timestamp, user, item, event, price, channel."""
    path = str(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"event file {path!r} does not exist")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.ParserError as exc:
        raise ValueError(f"{path}: not a readable CSV: {exc}") from exc
    raw.columns = [c.strip().lower() for c in raw.columns]
    raw = raw.rename(columns={"visitorid": "user", "itemid": "item", "user_id": "user", "item_id": "item"})
    missing = [c for c in ("timestamp", "user", "item", "event") if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; expected timestamp, user, item, event[, price][, channel], "
                         f"got {list(raw.columns)}")
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


def read_event_csv(path: str | Path, known_items: np.ndarray | None = None, **clean_kwargs) -> tuple[pd.DataFrame, CleaningReport]:
    """Read, clean and sessionise an event CSV into tidy logs (see module docstring)."""
    ev, rep = clean_events(read_events(path), known_items, **clean_kwargs)
    logs = events_to_logs(ev)
    rep.rows_out = len(logs)
    return logs, rep
