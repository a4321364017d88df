"""The store study and its script: tiny budgets in the quick suite, held-out comparisons at scale in the slow one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ecomsim.store import StoreConfig
from ecomsim.store.study import store_study
from tests.store.conftest import popularity_env

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--sessions-per-day", "60", "--days", "35", "--train-seeds", "0", "--test-seeds", "1,2", "--num-envs", "32"]


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "store_study.py"), *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)


def test_script_prints_forecasts_and_policies():
    proc = run_script(*TINY, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result["forecast_error_1_day_ahead"]) == {"moving_average", "behavior"}
    assert set(result["policies"]) == {"never_order", "base_stock_moving_average", "base_stock_behavior",
                                       "s_S_untuned", "s_S_tuned"}
    for scores in result["policies"].values():
        assert set(scores) == {"profit_per_day", "stockout_rate", "inventory_turnover"}
        assert scores["profit_per_day"]["n"] == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sessions-per-day", "0"], "error: sessions_per_day must be in [1, 100000000], got 0"),
        (["--lead-time-days", "-1"], "error: lead_time_days must be in [1, 365], got -1"),
        (["--train-seeds", "1", "--test-seeds", "1"], "error: train_seeds and test_seeds must be disjoint, both hold [1]"),
    ],
)
def test_script_bad_input_is_one_line(args, message):
    proc = run_script(*args)
    assert proc.returncode == 2 and proc.stderr.strip() == message, proc.stderr


@pytest.mark.slow
def test_baselines_on_held_out_stores():
    """Reference-world shoppers, 600 sessions/day, 70 days; tuned on 2 trajectories, scored on 8 held-out ones:
    base stock beats never ordering and the tuned (s, S) beats the untuned one, with non-overlapping 95% intervals
    of the profit per store-day."""
    env, act = popularity_env(num_envs=512)
    config = StoreConfig(sessions_per_day=600, horizon_days=70)
    result = store_study(env, act, config, 70, train_seeds=[0, 1], test_seeds=list(range(10, 18)))
    p = {name: m["profit_per_day"] for name, m in result["policies"].items()}
    assert p["base_stock_moving_average"]["low"] > p["never_order"]["high"], p
    assert p["base_stock_behavior"]["low"] > p["never_order"]["high"], p
    assert p["s_S_tuned"]["low"] > p["s_S_untuned"]["high"], p
    s = {name: m["stockout_rate"]["value"] for name, m in result["policies"].items()}
    assert s["s_S_tuned"] < s["s_S_untuned"] and s["base_stock_moving_average"] < s["never_order"]


def test_inventory_study_script_scores_forecasts_and_policies():
    """scripts/inventory_study.py on Inventory-v0 at a tiny size: both forecasts' errors and every baseline."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "inventory_study.py"), "--user-model", "reference",
                           "--sessions-per-day", "30", "--horizon-days", "30", "--warmup-days", "10", "--stores", "2",
                           "--tune-stores", "1", "--forecast-stores", "1", "--json",
                           "--env-options", '{"promotion_days": [12, 20, 21], "promotion_lift": 2.0}'],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    errors = result["forecast_error_1_day_ahead"]
    assert set(errors) == {"moving_average", "behavior"}
    assert errors["moving_average"]["num_scored"] + errors["moving_average"]["num_zero"] == 20 * 8  # days 10..29 of 8 groups
    assert set(result["scores"]) == {"never_order", "base_stock_moving_average", "base_stock_behavior", "s_S_tuned"}
    assert result["mean_units_demanded_per_day"] > 0
    promotion = result["forecast_error_promotion_days"]  # days 12, 20 and 21 of 8 groups, scored alone
    assert promotion["behavior"]["num_scored"] + promotion["behavior"]["num_zero"] == 3 * 8
