"""The tidy log schema every source is read into, its validation, and the time split.

**The schema** (a pandas DataFrame, one row per impression; :func:`validate_logs`):

=========== ======================= ================================================
column      dtype                   meaning
=========== ======================= ================================================
session     int64                   session id
user        int64                   user id (a hash where the source has none)
timestamp   datetime64[ns, UTC]     when the item was shown (or first touched)
channel     string                  ``app`` / ``web`` / ``social`` / ``unknown``
step        int64 >= 0              step of the session
position    Int64 >= 0 (nullable)   slot on the page, top 0; NA when unknown
item        int64                   item id of the source
price       float64 > 0 or NaN      price shown, currency units; NaN when unknown
shown       bool                    the item was on screen
clicked     boolean (nullable)      clicked / viewed; NA when the source lacks it
carted      boolean (nullable)      added to cart (implies clicked)
purchased   boolean (nullable)      bought (implies carted)
left        boolean (nullable)      the session ended after this step
propensity  float64 in (0, 1]/NaN   logging policy's probability of this item at
                                    this position given the earlier positions
=========== ======================= ================================================

**Step arrays** (:class:`StepData`): the same impressions grouped by step, as the
behaviour model trains on them.

Sources: the reference world (``ecomsim.data.reference_logs``), the Open Bandit
Dataset (``ecomsim.data.obd``) and generic event CSVs (``ecomsim.data.events``).
Splits are by time (:func:`time_split`): a session never straddles two splits.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from ecomsim.config import CHANNELS

LOG_COLUMNS: dict[str, str] = {
    "session": "int64",
    "user": "int64",
    "timestamp": "datetime64[ns, UTC]",
    "channel": "string",
    "step": "int64",
    "position": "Int64",
    "item": "int64",
    "price": "float64",
    "shown": "bool",
    "clicked": "boolean",
    "carted": "boolean",
    "purchased": "boolean",
    "left": "boolean",
    "propensity": "float64",
}
LOG_CHANNELS = (*CHANNELS, "unknown")


def _bad(name: str, column: str, mask: np.ndarray, values, expected: str) -> ValueError:
    row = int(np.flatnonzero(mask)[0])
    value = values[row].item() if hasattr(values[row], "item") else values[row]  # plain repr, not np.int64(...)
    return ValueError(f"{name}: column {column!r} at row {row} has value {value!r}; expected {expected} "
                      f"({int(mask.sum())} bad rows in all)")


def validate_logs(df: pd.DataFrame, name: str = "logs") -> pd.DataFrame:
    """Check a log frame against the schema; return it with canonical dtypes and column order.

    Raises:
        ValueError: naming the column, the first bad row, its value and what was expected.
    """
    missing = [c for c in LOG_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{name}: missing columns {missing}; the log schema is {list(LOG_COLUMNS)}")
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    for col, dtype in LOG_COLUMNS.items():
        s = df[col].reset_index(drop=True)
        try:
            if dtype.startswith("datetime"):
                s = pd.to_datetime(s, utc=True).dt.as_unit("ns")
            else:
                s = s.astype(dtype)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: column {col!r} cannot be read as {dtype}: {exc}") from exc
        out[col] = s
    for col in ("session", "user", "timestamp", "step", "item", "shown"):
        if out[col].isna().any():
            raise _bad(name, col, out[col].isna().to_numpy(), out[col].to_numpy(), "a value (no missing entries)")
    checks = [
        ("step", (out["step"] < 0).to_numpy(), ">= 0"),
        ("position", (out["position"].fillna(0) < 0).to_numpy(), ">= 0 or NA"),
        ("price", (out["price"] <= 0).to_numpy(), "> 0 or NaN"),
        ("propensity", ((out["propensity"] <= 0) | (out["propensity"] > 1)).to_numpy(), "in (0, 1] or NaN"),
        ("channel", (~out["channel"].isin(LOG_CHANNELS)).to_numpy(), f"one of {list(LOG_CHANNELS)}"),
    ]
    for col, mask, expected in checks:
        if mask.any():
            raise _bad(name, col, mask, out[col].to_numpy(), expected)
    for child, parent in (("carted", "clicked"), ("purchased", "carted"), ("clicked", "shown")):
        mask = (out[child].fillna(False) & ~out[parent].fillna(True).astype(bool)).to_numpy()
        if mask.any():
            raise _bad(name, child, mask, out[child].to_numpy(), f"False where {parent!r} is False ({child} implies {parent})")
    return out


# ================================================================ time split
def split_sessions_by_time(
    frame: pd.DataFrame, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Session ids of the train / validation / test splits, cut in order of session start time.

    Args:
        frame: logs with ``session`` and ``timestamp`` columns.
        fractions: shares of the sessions (not of the rows) in each split; they sum to 1.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must be three non-negative shares summing to 1, got {fractions}")
    start = frame.groupby("session", sort=False)["timestamp"].min().sort_values(kind="stable")
    sessions = start.index.to_numpy()
    n = len(sessions)
    cut1 = int(round(fractions[0] * n))
    cut2 = int(round((fractions[0] + fractions[1]) * n))
    return sessions[:cut1], sessions[cut1:cut2], sessions[cut2:]


def time_split(df: pd.DataFrame, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> tuple[pd.DataFrame, ...]:
    """Train / validation / test frames by session start time (see :func:`split_sessions_by_time`)."""
    return tuple(df[df["session"].isin(p)].reset_index(drop=True) for p in split_sessions_by_time(df, fractions))


# ============================================================= step arrays
@dataclass
class StepData:
    """Per-step arrays of logged sessions shown ``k`` items each (``S`` steps), for training.

    ``user`` ``(S, U)`` and ``items`` ``(S, k, F)`` are the :class:`~ecomsim.shoppers.behavior.SessionTracker`
    features; ``ref_*`` are the reference world's own probabilities on the same rows
    (for the Bayes-optimal AUC; NaN when the source is not the reference world).
    """

    session: np.ndarray
    step: np.ndarray
    user: np.ndarray
    items: np.ndarray
    item_ids: np.ndarray
    positions: np.ndarray
    channel: np.ndarray
    click: np.ndarray
    cart: np.ndarray
    purchase: np.ndarray
    left: np.ndarray
    level: np.ndarray
    ref_click: np.ndarray
    ref_cart: np.ndarray
    ref_purchase: np.ndarray
    ref_leave: np.ndarray

    def __len__(self) -> int:
        return int(self.session.shape[0])

    def take(self, mask: np.ndarray) -> "StepData":
        return StepData(**{f.name: (getattr(self, f.name) if f.name == "positions" else getattr(self, f.name)[mask])
                           for f in fields(self)})

    @staticmethod
    def concat(parts: list["StepData"]) -> "StepData":
        first = parts[0]
        return StepData(**{f.name: (first.positions if f.name == "positions" else
                                    np.concatenate([getattr(p, f.name) for p in parts]))
                           for f in fields(first)})
