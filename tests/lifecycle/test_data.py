"""Transaction tables, their validation, and the CDNOW cohort read from the lifetimes wheel."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pandas as pd
import pytest

from ecomsim.data import cdnow
from ecomsim.data.cdnow import cdnow_cohort, cdnow_file, load_cdnow, repeat_histogram
from ecomsim.data.transactions import RepeatBuying, read_transactions


def _has_lifetimes() -> bool:
    try:
        importlib.metadata.distribution("lifetimes")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


needs_lifetimes = pytest.mark.skipif(not _has_lifetimes(),
                                     reason="lifetimes not installed: pip install --no-deps lifetimes==0.11.3")


def table(**overrides) -> pd.DataFrame:
    base = {"customer_id": ["a", "a", "a", "b", "c", "c"],
            "date": ["2024-01-01", "2024-01-01", "2024-01-20", "2024-01-03", "2024-01-05", "2024-03-01"],
            "amount": [10.0, 5.0, 20.0, 7.5, 3.0, 0.0]}
    base.update(overrides)
    return pd.DataFrame(base)


# ------------------------------------------------------------- the reader
def test_same_day_purchases_merge_and_days_count_from_the_start():
    tx = read_transactions(table())
    assert list(tx.customer_ids) == ["a", "b", "c"]
    assert tx.day.tolist() == [0, 19, 2, 4, 60]
    assert tx.amount.tolist() == [15.0, 20.0, 7.5, 3.0, 0.0]
    assert tx.start == pd.Timestamp("2024-01-01")


def test_compact_dates_and_csv_files(tmp_path):
    path = tmp_path / "tx.csv"
    table(date=[20240101, 20240101, 20240120, 20240103, 20240105, 20240301]).to_csv(path, index=False)
    tx = read_transactions(path)
    assert tx.day.tolist() == [0, 19, 2, 4, 60]


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match=r"missing columns \['amount'\]"):
        read_transactions(table().drop(columns="amount"))


def test_unparsable_date_names_row_and_value(tmp_path):
    path = tmp_path / "tx.csv"
    table(date=["2024-01-01", "2024-01-01", "soon", "2024-01-03", "2024-01-05", "2024-03-01"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"row 4 column 'date' has 'soon', not a date"):
        read_transactions(path)


def test_negative_amount_names_row_and_value():
    with pytest.raises(ValueError, match=r"row 5 column 'amount' has -7.5; amounts must be >= 0"):
        read_transactions(table(amount=[10.0, 5.0, 20.0, -7.5, 3.0, 0.0]))


def test_non_numeric_amount_is_named():
    with pytest.raises(ValueError, match=r"row 3 column 'amount' has 'ten'"):
        read_transactions(table(amount=[10.0, "ten", 20.0, 7.5, 3.0, 0.0]))


def test_empty_customer_id_is_named():
    with pytest.raises(ValueError, match=r"row 3 column 'customer_id' is empty"):
        read_transactions(table(customer_id=["a", None, "a", "b", "c", "c"]))


def test_no_repeat_buyers_is_an_error():
    one_day_each = table(customer_id=["a", "a", "b", "c", "d", "e"],
                         date=["2024-01-01"] * 2 + ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"])
    with pytest.raises(ValueError, match=r"no repeat buyers: each of the 5 customers bought on one day only"):
        read_transactions(one_day_each)


def test_paths_that_are_not_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_transactions(tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError, match="is a directory"):
        read_transactions(tmp_path)


def test_repeat_buying_summary_by_hand():
    tx = read_transactions(table())
    s = RepeatBuying.from_transactions(tx, calibration_days=28, holdout_days=70)
    assert s.num_customers == 3  # all first bought in the window
    assert s.x.tolist() == [1, 0, 0] and s.x_holdout.tolist() == [0, 0, 1]
    np.testing.assert_allclose(s.t_x, [19 / 7, 0.0, 0.0])
    np.testing.assert_allclose(s.T, [27 / 7, 25 / 7, 23 / 7])
    assert s.weekly_repeats.sum() == 2 and s.weekly_repeats[2] == 1 and s.weekly_repeats[8] == 1
    assert s.inter_purchase_days("calibration").tolist() == [19]
    assert s.inter_purchase_days("all").tolist() == [19, 56]


def test_customers_who_enter_after_the_window_are_not_in_the_cohort():
    tx = read_transactions(table())
    s = RepeatBuying.from_transactions(tx, calibration_days=4, holdout_days=70)
    assert s.num_customers == 2  # "c" first bought on day 4
    with pytest.raises(ValueError, match="calibration_days must be a whole number of days >= 1, got 0"):
        RepeatBuying.from_transactions(tx, calibration_days=0, holdout_days=7)


# ------------------------------------------------------------------ CDNOW
def test_missing_wheel_gives_the_install_command(monkeypatch):
    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(cdnow.importlib.metadata, "distribution", absent)
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps lifetimes==0.11.3"):
        cdnow_file()


def test_unknown_cdnow_file():
    with pytest.raises(ValueError, match=r"name must be one of \['sample', 'master'\], got 'full'"):
        cdnow_file("full")


@needs_lifetimes
def test_cdnow_sample_cohort_matches_the_published_summary():
    c = cdnow_cohort()
    assert c.num_customers == 2357 and c.first_day.max() < 84
    assert c.x.sum() == 2457 and c.x_holdout.sum() == 1882  # repeat transactions, weeks 1-39 and 40-78
    assert len(c.weekly_repeats) == 78
    # lifetimes' own summary of the same cohort (x, t_x, T rounded to 2 decimals)
    ref = pd.read_csv(cdnow_file().parent / "cdnow_customers_summary.csv")
    assert np.array_equal(ref["frequency"].to_numpy(), c.x)
    np.testing.assert_allclose(ref["recency"].to_numpy(), c.t_x, atol=0.005)
    np.testing.assert_allclose(ref["T"].to_numpy(), c.T, atol=0.005)
    np.testing.assert_allclose(repeat_histogram(c.x)[:2], [0.5986, 0.1863], atol=1e-4)


@needs_lifetimes
def test_cdnow_master_loads():
    tx = load_cdnow("master")
    assert tx.num_customers == 23570 and tx.start == pd.Timestamp("1997-01-01")
