"""Customer transaction tables (``customer_id, date, amount``) and their repeat-buying summary.

A transaction table is what a shop can export about its customers: one row per
purchase. :func:`read_transactions` validates it (every problem names the column,
the row and the value) and merges purchases of one customer on one day into a
single transaction, as the repeat-buying literature does (Fader, Hardie & Lee
2005, "Counting your customers the easy way", on CDNOW). :class:`RepeatBuying`
summarises a cohort over a calibration window and a holdout window:

============== ============== ===========================================================
field          shape          meaning
============== ============== ===========================================================
first_day      (N,) int64     day of the first (trial) purchase, days since ``start``
x              (N,) int64     repeat transactions in the calibration window
t_x            (N,) float64   recency: weeks from the first to the last calibration purchase (0 if x = 0)
T              (N,) float64   age: weeks from the first purchase to the calibration window's last day
x_holdout      (N,) int64     transactions in the holdout window
weekly_repeats (W,) int64     repeat transactions of the whole cohort in week w = 1..W
============== ============== ===========================================================

Days are whole calendar days since ``start`` (day 0). Week ``w`` covers days
``[7 (w - 1), 7 w)``. The calibration window is days ``[0, calibration_days)``, the
holdout ``[calibration_days, calibration_days + holdout_days)``; ``T`` is measured
to the calibration window's last day, so a customer who first bought on day 0 of a
273-day window has ``T = 272 / 7 = 38.86`` weeks (the published CDNOW convention).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

TRANSACTION_COLUMNS = ("customer_id", "date", "amount")
DAYS_PER_WEEK = 7.0


@dataclass(frozen=True)
class Transactions:
    """Purchases merged per customer and day, sorted by customer then day.

    Attributes:
        customer: ``(M,)`` int64 row of the customer in ``customer_ids``.
        day: ``(M,)`` int64 days since ``start``.
        amount: ``(M,)`` float64 the day's spend, currency units.
        customer_ids: ``(N,)`` the table's own customer ids, in first-seen order of the sorted table.
        start: the calendar date of day 0 (the earliest purchase unless given).
    """

    customer: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    customer_ids: np.ndarray
    start: pd.Timestamp

    @property
    def num_customers(self) -> int:
        return len(self.customer_ids)


def _shown(value):
    """A cell's value as the user wrote it (numpy scalars as plain Python numbers)."""
    return value.item() if isinstance(value, np.generic) else value


def _parse_dates(col: pd.Series, source: str) -> pd.Series:
    """Dates from ``datetime`` values, ISO 8601 strings or ``YYYYMMDD`` integers / strings."""
    if pd.api.types.is_datetime64_any_dtype(col):
        parsed = col
    else:
        text = col.astype(str).str.strip()
        compact = text.str.fullmatch(r"\d{8}")
        parsed = pd.Series(pd.NaT, index=col.index, dtype="datetime64[ns]")
        if compact.any():
            parsed[compact] = pd.to_datetime(text[compact], format="%Y%m%d", errors="coerce")
        if (~compact).any():
            parsed[~compact] = pd.to_datetime(text[~compact], format="ISO8601", errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{source}: row {row + 2} column 'date' has {_shown(col.iloc[row])!r}, not a date; "
                         "expected ISO 8601 (1997-01-31) or YYYYMMDD (19970131)")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert(None)
    return parsed.dt.normalize()


def read_transactions(source: str | Path | pd.DataFrame, start: str | pd.Timestamp | None = None) -> Transactions:
    """Read and validate a transaction table; merge each customer's purchases of one day.

    Args:
        source: a CSV path or a DataFrame with columns ``customer_id, date, amount``
            (extra columns are ignored). Rows are numbered as lines of the CSV (header = line 1).
        start: the calendar date of day 0; default the earliest purchase.

    Raises:
        FileNotFoundError: the path does not exist (or is a directory).
        ValueError: missing columns, empty ids, unparsable dates, non-numeric or negative
            amounts, purchases before ``start``, or no customer who bought on two different days.
    """
    if isinstance(source, pd.DataFrame):
        raw, name = source, "transaction table"
    else:
        path = Path(source)
        if path.is_dir():
            raise FileNotFoundError(f"transaction table {str(path)!r} is a directory; expected a CSV file")
        if not path.is_file():
            raise FileNotFoundError(f"transaction table {str(path)!r} does not exist")
        try:
            raw = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not a readable CSV: {exc}") from exc
        name = str(path)
    missing = [c for c in TRANSACTION_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"{name}: missing columns {missing}; expected columns {list(TRANSACTION_COLUMNS)} "
                         f"(got {list(raw.columns)})")
    if len(raw) == 0:
        raise ValueError(f"{name}: no rows; expected one row per purchase")
    ids = raw["customer_id"]
    empty = ids.isna().to_numpy() | (ids.astype(str).str.strip() == "").to_numpy()
    if empty.any():
        row = int(np.argmax(empty))
        raise ValueError(f"{name}: row {row + 2} column 'customer_id' is empty; expected an id")
    dates = _parse_dates(raw["date"], name)
    amount = pd.to_numeric(raw["amount"], errors="coerce")
    bad = (amount.isna() | ~np.isfinite(amount.fillna(0.0))).to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{name}: row {row + 2} column 'amount' has {_shown(raw['amount'].iloc[row])!r}; "
                         "expected a finite number >= 0 (currency units)")
    negative = (amount < 0).to_numpy()
    if negative.any():
        row = int(np.argmax(negative))
        raise ValueError(f"{name}: row {row + 2} column 'amount' has {_shown(raw['amount'].iloc[row])!r}; "
                         "amounts must be >= 0 (currency units; record returns separately)")
    day0 = dates.min() if start is None else pd.Timestamp(start).normalize()
    days = (dates - day0).dt.days.to_numpy(np.int64)
    early = days < 0
    if early.any():
        row = int(np.argmax(early))
        raise ValueError(f"{name}: row {row + 2} column 'date' has {_shown(raw['date'].iloc[row])!r}, before start {day0.date()}")
    frame = pd.DataFrame({"customer_id": ids.to_numpy(), "day": days, "amount": amount.to_numpy(np.float64)})
    merged = frame.groupby(["customer_id", "day"], as_index=False, sort=True)["amount"].sum()
    customer_ids, customer = np.unique(merged["customer_id"].to_numpy(), return_inverse=True)
    if merged.groupby("customer_id").size().max() < 2:
        raise ValueError(f"{name}: no repeat buyers: each of the {len(customer_ids)} customers bought on one day only; "
                         "repeat-buying models need customers with purchases on at least two different days")
    return Transactions(customer=customer.astype(np.int64), day=merged["day"].to_numpy(np.int64),
                        amount=merged["amount"].to_numpy(np.float64), customer_ids=customer_ids, start=day0)


@dataclass(frozen=True)
class RepeatBuying:
    """A cohort's repeat buying over a calibration and a holdout window (fields in the module docstring).

    Also holds the transactions themselves (``customer``, ``day``, ``amount``, ``(M,)``, restricted to the
    cohort and to the two windows) so simulated cohorts can be summarised by the same code.
    """

    first_day: np.ndarray
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    x_holdout: np.ndarray
    weekly_repeats: np.ndarray
    customer: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    calibration_days: int
    holdout_days: int

    @property
    def num_customers(self) -> int:
        return len(self.first_day)

    @property
    def calibration_weeks(self) -> int:
        return int(round(self.calibration_days / DAYS_PER_WEEK))

    def cumulative_repeats(self) -> np.ndarray:
        """``(W,)`` cumulative repeat transactions of the cohort at the end of each week."""
        return np.cumsum(self.weekly_repeats)

    def inter_purchase_days(self, window: str = "calibration") -> np.ndarray:
        """Gaps in days between consecutive purchases of a customer, both inside ``window``.

        ``window``: ``"calibration"``, ``"holdout"`` or ``"all"``.
        """
        limits = {"calibration": (0, self.calibration_days),
                  "holdout": (self.calibration_days, self.calibration_days + self.holdout_days),
                  "all": (0, self.calibration_days + self.holdout_days)}
        if window not in limits:
            raise ValueError(f"window must be one of {list(limits)}, got {window!r}")
        lo, hi = limits[window]
        same = self.customer[1:] == self.customer[:-1]
        inside = (self.day[:-1] >= lo) & (self.day[1:] < hi)
        keep = same & inside
        return (self.day[1:] - self.day[:-1])[keep]

    @classmethod
    def from_days(cls, customer: np.ndarray, day: np.ndarray, num_customers: int, calibration_days: int,
                  holdout_days: int, amount: np.ndarray | None = None) -> "RepeatBuying":
        """Summarise purchase days (one per customer and day, sorted by customer then day).

        Every customer ``0 .. num_customers - 1`` must have its first purchase inside the calibration window.
        """
        customer = np.asarray(customer, dtype=np.int64)
        day = np.asarray(day, dtype=np.int64)
        amount = np.zeros(len(day)) if amount is None else np.asarray(amount, dtype=np.float64)
        end = calibration_days + holdout_days
        keep = day < end
        customer, day, amount = customer[keep], day[keep], amount[keep]
        assert np.all(np.diff(customer) >= 0), "transactions must be sorted by customer"
        first_row = np.searchsorted(customer, np.arange(num_customers))
        assert np.all(customer[np.minimum(first_row, len(customer) - 1)] == np.arange(num_customers)), \
            "every customer needs a first purchase"
        first_day = day[first_row]
        repeat = np.ones(len(day), dtype=bool)
        repeat[first_row] = False
        cal = repeat & (day < calibration_days)
        hold = repeat & (day >= calibration_days)
        x = np.bincount(customer[cal], minlength=num_customers)
        last = np.full(num_customers, -1, dtype=np.int64)
        np.maximum.at(last, customer[cal], day[cal])
        t_x = np.where(x > 0, (last - first_day) / DAYS_PER_WEEK, 0.0)
        T = (calibration_days - 1 - first_day) / DAYS_PER_WEEK
        weeks = int(np.ceil(end / DAYS_PER_WEEK))
        weekly = np.bincount(day[repeat] // 7, minlength=weeks)[:weeks]
        return cls(first_day=first_day, x=x, t_x=t_x, T=T,
                   x_holdout=np.bincount(customer[hold], minlength=num_customers), weekly_repeats=weekly,
                   customer=customer, day=day, amount=amount, calibration_days=calibration_days,
                   holdout_days=holdout_days)

    @classmethod
    def from_transactions(cls, tx: Transactions, calibration_days: int, holdout_days: int) -> "RepeatBuying":
        """The cohort of ``tx``'s customers whose first purchase falls in the calibration window.

        Customers who first bought later are not part of the cohort (their trial is not observed in
        calibration), as in the literature's cohort analyses.
        """
        for field, value, least in (("calibration_days", calibration_days, 1), ("holdout_days", holdout_days, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"{field} must be a whole number of days >= {least}, got {value!r}")
        first = np.full(tx.num_customers, np.iinfo(np.int64).max)
        np.minimum.at(first, tx.customer, tx.day)
        in_cohort = first < calibration_days
        if not in_cohort.any():
            raise ValueError(f"no customer made a first purchase in the calibration window of {calibration_days} days")
        new_index = np.cumsum(in_cohort) - 1
        rows = in_cohort[tx.customer]
        return cls.from_days(new_index[tx.customer[rows]], tx.day[rows], int(in_cohort.sum()), int(calibration_days),
                             int(holdout_days), tx.amount[rows])
