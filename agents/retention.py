"""Retention policies on ``ecomsim/Retention-v0`` and how they are scored over customers.

A retention policy maps observations ``(n, OBS_SIZE)`` to actions ``(n,)`` (the env's
``Discrete`` encoding, ``ecomsim.lifecycle.retention_config``). Baselines:

* ``never_offer``: no coupon, no message, popularity recommendations.
* ``always_10``: a 10% coupon after every visit, no message, popularity.
* ``churn_rule``: the mission's "behaviour turns unusual, send a coupon": when the observed churn risk
  (the Bayes risk, ``ecomsim.lifecycle.retention``) is at least ``threshold``, a 10% coupon and one
  message (day 14); otherwise nothing. The threshold is tuned on separate customers (:func:`tune_churn_rule`).
* ``myopic``: what maximises this visit's profit alone: no coupon and no message (each only costs on
  the visit it decides), and the recommendation strategy of highest mean profit per visit, measured on
  separate customers (:func:`tune_myopic`).

:func:`score_customers` runs a policy over customers (one seed each, so every policy meets the same
customers at their first purchase) and :func:`retention_scores` gives profit per customer with a 95%
bootstrap interval and the share of customers not churned by each day with a Wilson interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ecomsim.errors import check_choice
from ecomsim.lifecycle.retention import CHURN_RISK_INDEX, RetentionEnv
from ecomsim.lifecycle.retention_batch import RetentionBatch
from ecomsim.lifecycle.retention_config import RetentionConfig
from ecomsim.metrics import mean_bootstrap, wilson
from ecomsim.sim.streams import keys_from_seeds

RETENTION_BASELINES = ("never_offer", "always_10", "churn_rule", "myopic")
RETENTION_DAYS = (90, 180, 365)
CHURN_THRESHOLDS = (0.2, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95)


def _index(values: tuple, value: Any, field: str) -> int:
    if value not in values:
        raise ValueError(f"{field}: the env's options must include {value!r} for this baseline, got {list(values)}")
    return values.index(value)


class RetentionPolicy:
    """Actions for a batch of observations: ``act((n, OBS_SIZE)) -> (n,)`` int64."""

    name = "policy"

    def act(self, obs: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class FixedAction(RetentionPolicy):
    """The same action every time: ``offer`` with ``plan`` under ``strategy`` (values, not indexes)."""

    def __init__(self, cfg: RetentionConfig, name: str, offer: float = 0.0, plan: tuple[int, ...] = (),
                 strategy: str = "popularity") -> None:
        self.name = name
        self.action = cfg.encode(_index(cfg.offers, offer, "offers"), _index(cfg.message_plans, plan, "message_plans"),
                                 _index(cfg.strategies, strategy, "strategies"))

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.full(len(obs), self.action, dtype=np.int64)


class ChurnRule(RetentionPolicy):
    """A 10% coupon and one message when the churn risk is at least ``threshold``, else nothing."""

    name = "churn_rule"

    def __init__(self, cfg: RetentionConfig, threshold: float) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be a churn risk in [0, 1], got {threshold!r}")
        self.threshold = float(threshold)
        self.quiet = FixedAction(cfg, "quiet").action
        self.offer = FixedAction(cfg, "offer", 0.10, (14,)).action

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.where(np.asarray(obs)[:, CHURN_RISK_INDEX] >= self.threshold, self.offer, self.quiet).astype(np.int64)


def baseline(name: str, cfg: RetentionConfig, threshold: float = 0.9, strategy: str = "popularity") -> RetentionPolicy:
    """The baseline ``name`` of :data:`RETENTION_BASELINES` (``churn_rule``'s ``threshold``, ``myopic``'s ``strategy``)."""
    check_choice("policy", name, RETENTION_BASELINES)
    if name == "never_offer":
        return FixedAction(cfg, name)
    if name == "always_10":
        return FixedAction(cfg, name, 0.10)
    if name == "churn_rule":
        return ChurnRule(cfg, threshold)
    return FixedAction(cfg, name, strategy=strategy)


@dataclass
class CustomerRecords:
    """One row per customer (``(N,)`` arrays): ``profit`` (sum of rewards, currency units), ``revenue``,
    ``visits`` (after the first purchase), ``purchases`` (orders), ``end_day`` (churn day, or the horizon),
    ``churned`` bool, ``coupon_cost``, ``message_cost``."""

    profit: np.ndarray
    revenue: np.ndarray
    visits: np.ndarray
    purchases: np.ndarray
    end_day: np.ndarray
    churned: np.ndarray
    coupon_cost: np.ndarray
    message_cost: np.ndarray


def score_customers(env: RetentionEnv, act: Callable[[np.ndarray], np.ndarray], seeds: list[int],
                    batch_size: int = 1024) -> CustomerRecords:
    """One episode per seed with ``act`` (``(k, OBS_SIZE) -> (k,)``), customers stepped ``batch_size`` at a time.

    Customer ``i`` lives the episode of ``env`` reset with ``seeds[i]`` (``RetentionBatch``: each row draws
    from its own streams; tested against the single env).
    """
    cfg = env.config
    rows: dict[str, list] = {k: [] for k in CustomerRecords.__dataclass_fields__}
    for lo in range(0, len(seeds), batch_size):
        chunk = [int(s) for s in seeds[lo: lo + batch_size]]
        k = len(chunk)
        batch = RetentionBatch(cfg, k)
        everyone = np.arange(k)
        batch.reset_rows(everyone, keys_from_seeds(chunk))
        tot = {key: np.zeros(k) for key in ("profit", "revenue", "visits", "purchases", "coupon_cost", "message_cost")}
        end_day = np.zeros(k, dtype=np.int64)
        churned = np.zeros(k, dtype=bool)
        live = everyone
        while len(live):
            actions = np.asarray(act(batch.observe(live)), dtype=np.int64).reshape(len(live))
            reward, done, info = batch.step(live, actions)
            tot["profit"][live] += reward
            tot["revenue"][live] += info["revenue"]
            tot["visits"][live] += info["visited"]
            tot["purchases"][live] += info["purchased"]
            tot["coupon_cost"][live] += info["discount_cost"]
            tot["message_cost"][live] += info["message_cost"]
            end_day[live[done]] = info["day"][done]
            churned[live[done]] = info["churned"][done]
            live = live[~done]
        for key, v in tot.items():
            rows[key].append(v)
        rows["end_day"].append(end_day)
        rows["churned"].append(churned)
    return CustomerRecords(**{key: np.concatenate(v) for key, v in rows.items()})


def retained(records: CustomerRecords, day: int) -> np.ndarray:
    """``(N,)`` bool: not churned by ``day`` (the simulation's truth: churn is hidden from the shop)."""
    return ~records.churned | (records.end_day > day)


def retention_scores(records: CustomerRecords, days: tuple[int, ...] = RETENTION_DAYS) -> dict[str, dict]:
    """``profit_per_customer`` (bootstrap 95% interval), ``revenue_per_customer``, ``visits_per_customer``,
    ``coupon_cost_per_customer``, ``message_cost_per_customer`` and ``retention_day_<d>`` (Wilson) as dicts."""
    out = {"profit_per_customer": mean_bootstrap(records.profit).to_dict()}
    for key, values in (("revenue", records.revenue), ("visits", records.visits),
                        ("coupon_cost", records.coupon_cost), ("message_cost", records.message_cost)):
        out[f"{key}_per_customer"] = mean_bootstrap(values).to_dict()
    n = len(records.profit)
    for d in days:
        out[f"retention_day_{d}"] = wilson(float(retained(records, d).sum()), n).to_dict()
    return out


def tune_churn_rule(env: RetentionEnv, seeds: list[int], thresholds: tuple[float, ...] = CHURN_THRESHOLDS
                    ) -> tuple[float, dict[float, float]]:
    """The threshold of highest mean profit per customer on ``seeds``, and every threshold's mean profit."""
    means = {t: float(score_customers(env, ChurnRule(env.config, t).act, seeds).profit.mean()) for t in thresholds}
    return max(means, key=lambda t: (means[t], -t)), means


def tune_myopic(env: RetentionEnv, seeds: list[int]) -> tuple[str, dict[str, float]]:
    """The strategy of highest mean profit per visit (no coupon, no message) on ``seeds``, and every strategy's."""
    per_visit = {}
    for s in env.config.strategies:
        rec = score_customers(env, FixedAction(env.config, "myopic", strategy=s).act, seeds)
        per_visit[s] = float(rec.profit.sum() / max(rec.visits.sum(), 1.0))
    return max(per_visit, key=per_visit.get), per_visit


def compare_retention_policies(env: RetentionEnv, seeds: list[int], tune_seeds: list[int],
                               agents: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None,
                               log: Callable[[str], None] = print) -> dict[str, Any]:
    """Tune ``churn_rule`` and ``myopic`` on ``tune_seeds``, then score every baseline and ``agents`` (name ->
    ``act``) on ``seeds``. Returns a JSON-friendly dict: ``tuning``, ``scores`` (policy -> metric -> interval)."""
    if set(seeds) & set(tune_seeds):
        raise ValueError(f"seeds and tune_seeds must be disjoint, both hold {sorted(set(seeds) & set(tune_seeds))[:5]}")
    threshold, by_threshold = tune_churn_rule(env, tune_seeds)
    strategy, by_strategy = tune_myopic(env, tune_seeds)
    log(f"tuned on {len(tune_seeds)} customers: churn_rule threshold {threshold} "
        f"(mean profit {by_threshold}), myopic strategy {strategy!r} (profit per visit {by_strategy})")
    runs = {name: baseline(name, env.config, threshold, strategy).act for name in RETENTION_BASELINES}
    runs.update(agents or {})
    out: dict[str, Any] = {"tuning": {"churn_threshold": threshold, "profit_by_threshold": by_threshold,
                                      "myopic_strategy": strategy, "profit_per_visit_by_strategy": by_strategy},
                           "scores": {}, "retention_curve": {}}
    horizon = env.config.horizon_days
    out["curve_days"] = list(range(0, horizon + 1, 7))
    profits: dict[str, np.ndarray] = {}
    for name, act in runs.items():
        rec = score_customers(env, act, seeds)
        profits[name] = rec.profit
        out["scores"][name] = retention_scores(rec, tuple(d for d in RETENTION_DAYS if d <= horizon))
        out["retention_curve"][name] = [float(retained(rec, d).mean()) for d in out["curve_days"]]
        s = out["scores"][name]
        log(f"  {name}: profit/customer {_cell(s['profit_per_customer'])}   "
            + "   ".join(f"day {d} {_cell(s[f'retention_day_{d}'])}" for d in RETENTION_DAYS if d <= horizon))
    # each agent against the best baseline on the same customers (seeds): the paired difference's interval is
    # much narrower than the two policies' own intervals, which also hold the spread between customers
    best = max(RETENTION_BASELINES, key=lambda b: profits[b].mean())
    out["paired"] = {name: {"baseline": best, "difference": mean_bootstrap(profits[name] - profits[best]).to_dict()}
                     for name in (agents or {})}
    for name, d in out["paired"].items():
        log(f"  {name} - {best}, same customers: profit/customer {_cell(d['difference'])}")
    return out


def plot_retention(path, result: dict[str, Any], title: str) -> None:
    """``report.png``: the share of customers not churned by day, one line per policy, and profit per customer
    with its 95% interval (``result`` from :func:`compare_retention_policies`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, curve in result["retention_curve"].items():
        left.plot(result["curve_days"], curve, label=name)
    left.set(xlabel="day since the first purchase", ylabel="share not churned", title="retention")
    left.legend()
    names = list(result["scores"])
    p = [result["scores"][n]["profit_per_customer"] for n in names]
    right.bar(names, [e["value"] for e in p],
              yerr=[[e["value"] - e["low"] for e in p], [e["high"] - e["value"] for e in p]], capsize=4)
    right.set(ylabel="profit per customer (currency units)", title="profit per customer, 95% interval")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def retention_table(scores: dict[str, dict], horizon_days: int = 365) -> str:
    """One line per policy: profit per customer and retention at each day of ``RETENTION_DAYS`` within the horizon."""
    days = [d for d in RETENTION_DAYS if d <= horizon_days]
    width = max(len("policy"), *map(len, scores)) + 2
    lines = [f"{'policy':<{width}}{'profit per customer':>30}" + "".join(f"{'retained day ' + str(d):>26}" for d in days)]
    for name, s in scores.items():
        lines.append(f"{name:<{width}}{_cell(s['profit_per_customer']):>30}"
                     + "".join(f"{_cell(s[f'retention_day_{d}']):>26}" for d in days))
    return "\n".join(lines)


def _cell(e: dict) -> str:
    return f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]"


def bench_retention(user_model: str, num_envs: int, seconds: float, warmup_steps: int = 5) -> dict[str, float]:
    """Throughput of ``ecomsim/Retention-v0`` under random actions, resets included: ``steps_per_s`` (decisions),
    ``visits_per_s`` (sessions run) and ``customer_years_per_s`` (simulated days / 365). ``num_envs == 1``: one
    ``gym.make`` env; more: ``gym.make_vec`` (the native batch)."""
    import time

    import gymnasium as gym

    single = num_envs == 1
    env = (gym.make("ecomsim/Retention-v0", user_model=user_model) if single
           else gym.make_vec("ecomsim/Retention-v0", num_envs=num_envs, user_model=user_model))
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    last_day = np.zeros(num_envs)
    totals = {"steps": 0.0, "visits": 0.0, "days": 0.0}

    def step() -> None:
        if single:
            _, _, term, trunc, info = env.step(int(rng.integers(env.action_space.n)))
            days, visited, done = np.array([info["day"]]), np.array([info["visited"]]), np.array([term or trunc])
        else:
            _, _, term, trunc, info = env.step(rng.integers(env.single_action_space.n, size=num_envs))
            stepped = info.get("_visited", np.zeros(num_envs, dtype=bool))
            days = np.where(stepped, info.get("day", last_day), last_day)  # a row just reset stays at its day 0
            visited, done = info.get("visited", np.zeros(num_envs, dtype=bool)) & stepped, term | trunc
        totals["steps"] += num_envs
        totals["visits"] += float(np.sum(visited))
        totals["days"] += float(np.sum(days - last_day))
        last_day[:] = np.where(done, 0, days)
        if single and done[0]:
            env.reset()

    for _ in range(warmup_steps):
        step()
    totals.update(steps=0.0, visits=0.0, days=0.0)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
    dt = time.perf_counter() - t0
    env.close()
    return {"steps_per_s": totals["steps"] / dt, "visits_per_s": totals["visits"] / dt,
            "customer_years_per_s": totals["days"] / 365.0 / dt}
