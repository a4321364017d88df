"""The CDNOW repeat-buying data, read from the installed ``lifetimes`` wheel at run time.

CDNOW was an online music retailer. Its transaction log (customers who made their
first purchase in the first quarter of 1997, followed to the end of June 1998) is
the standard benchmark of repeat-buying models (Fader, Hardie & Lee 2005). Two
files ship inside the ``lifetimes`` wheel: ``CDNOW_master.txt`` (23,570 customers)
and ``CDNOW_sample.txt`` (a 1/10 sample, 2,357 customers). Install the wheel with
``pip install --no-deps lifetimes==0.11.3``: only its data files are read (through
``importlib.metadata``, without importing ``lifetimes``, whose dependencies are not
needed here). The data are never copied into this repository.

The standard cohort (:func:`cdnow_cohort`): day 0 is 1997-01-01, purchases of one
customer on one day are merged, the calibration window is weeks 1-39 (1997-01-01 to
1997-09-30), the holdout weeks 40-78 (1997-10-01 to 1998-06-30).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pandas as pd

from ecomsim.data.transactions import RepeatBuying, Transactions, read_transactions

CDNOW_INSTALL_HINT = "install the data with `pip install --no-deps lifetimes==0.11.3` (data files only are read)"
CDNOW_FILES = {"sample": "lifetimes/datasets/CDNOW_sample.txt", "master": "lifetimes/datasets/CDNOW_master.txt"}
CDNOW_START = "1997-01-01"
CALIBRATION_WEEKS = 39
HOLDOUT_WEEKS = 39
SAMPLE_CUSTOMERS = 2357


def cdnow_file(name: str = "sample") -> Path:
    """Path of ``CDNOW_<name>.txt`` inside the installed ``lifetimes`` wheel (``name``: sample | master)."""
    if name not in CDNOW_FILES:
        raise ValueError(f"name must be one of {list(CDNOW_FILES)}, got {name!r}")
    try:
        dist = importlib.metadata.distribution("lifetimes")
    except importlib.metadata.PackageNotFoundError:
        raise ModuleNotFoundError(f"the CDNOW data need the 'lifetimes' package, which is not installed; "
                                  f"{CDNOW_INSTALL_HINT}") from None
    path = Path(str(dist.locate_file(CDNOW_FILES[name])))
    if not path.is_file():
        raise FileNotFoundError(f"the installed lifetimes {dist.version} lacks {CDNOW_FILES[name]}; {CDNOW_INSTALL_HINT}")
    return path


def load_cdnow(name: str = "sample") -> Transactions:
    """CDNOW purchases as a validated, day-merged :class:`Transactions` table (day 0 = 1997-01-01).

    The sample file has no header and five columns (master id, sample id, date
    ``YYYYMMDD``, CDs, dollars); the master file a header and four (id, date, CDs, dollars).
    """
    path = cdnow_file(name)
    if name == "sample":
        raw = pd.read_csv(path, sep=r"\s+", header=None, names=["master_id", "customer_id", "date", "cds", "amount"])
    else:
        raw = pd.read_csv(path, sep=r"\s+", header=0, names=["customer_id", "date", "cds", "amount"])
    return read_transactions(raw[["customer_id", "date", "amount"]], start=CDNOW_START)


def cdnow_cohort(name: str = "sample") -> RepeatBuying:
    """The standard CDNOW cohort: calibration weeks 1-39, holdout weeks 40-78 (see module docstring)."""
    tx = load_cdnow(name)
    cohort = RepeatBuying.from_transactions(tx, 7 * CALIBRATION_WEEKS, 7 * HOLDOUT_WEEKS)
    # the published cohort: everyone entered in 1997 Q1 (days 0-83); a different file would break the benchmark
    if cohort.num_customers != tx.num_customers or int(cohort.first_day.max()) >= 84:
        raise ValueError(f"{cdnow_file(name)}: not the CDNOW cohort (customers {tx.num_customers}, "
                         f"last first purchase on day {int(cohort.first_day.max())}); expected first purchases in 1997 Q1")
    if name == "sample" and cohort.num_customers != SAMPLE_CUSTOMERS:
        raise ValueError(f"{cdnow_file(name)}: {cohort.num_customers} customers, expected {SAMPLE_CUSTOMERS}")
    return cohort


def repeat_histogram(x: np.ndarray, top: int = 7) -> np.ndarray:
    """``(top + 1,)`` share of customers with 0, 1, ..., ``top - 1`` and ``top`` or more repeat transactions."""
    return np.bincount(np.minimum(np.asarray(x, dtype=np.int64), top), minlength=top + 1) / len(x)
