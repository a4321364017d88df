"""Store policies side by side on ``ecomsim/Inventory-v0``: baselines, tuned (s, S) and trained agents.

:func:`compare_store_policies` runs every policy on the same held-out store seeds
(``ecomsim.store.evaluation``) and gives each metric's 95% interval over stores:
``profit_per_day``, ``stockout_rate``, ``inventory_turnover``. The (s, S) baseline is tuned
on other seeds first. :func:`store_table` prints them, :func:`plot_store_report` draws
``report.png``: stock on hand and daily sales (and lost sales) over the horizon of the
first held-out store, one panel per policy. ``scripts/train_agent.py --env-id
ecomsim/Inventory-v0`` and ``scripts/inventory_study.py`` use them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ecomsim.metrics import STORE_METRIC_NAMES
from ecomsim.store.evaluation import (BASELINES, baseline_orders, evaluate_orders, intervals, policy_orders,
                                      tune_ss_on_sessions)
from ecomsim.store.harness import StoreHistory
from ecomsim.store.inventory import InventoryEnv


def agent_act(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """``obs -> action`` of an SB3 model or a loaded agent (deterministic), one store at a time."""
    def act(obs: np.ndarray) -> np.ndarray:
        actions, _ = model.predict(obs[None], deterministic=True)
        return np.asarray(actions)[0]

    return act


def compare_store_policies(options: dict[str, Any], seeds: list[int], tune_seeds: list[int],
                           agents: dict[str, Any] | None = None, baselines: tuple[str, ...] = BASELINES,
                           tune: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Score ``agents`` (name -> model) and the baselines on ``seeds``; (s, S) tuned on ``tune_seeds`` first.

    Returns a JSON-friendly dict: ``scores`` (policy -> metric -> interval), ``per_store``
    (policy -> metric -> list), ``tuning`` and ``seconds``; and under ``histories`` (not
    JSON) each policy's :class:`StoreHistory` of the first seed, for :func:`plot_store_report`.
    """
    if set(seeds) & set(tune_seeds):
        raise ValueError(f"seeds and tune_seeds must be disjoint, both hold {sorted(set(seeds) & set(tune_seeds))}")
    env = InventoryEnv(**options)
    runs: dict[str, tuple[Callable | None, Callable | None]] = {
        name: (None, agent_act(model)) for name, model in (agents or {}).items()}
    runs.update({name: (baseline_orders(name), None) for name in baselines})
    out: dict[str, Any] = {"scores": {}, "per_store": {}, "seconds": {}, "histories": {}}
    if tune:
        start = time.time()
        tuning, _ = tune_ss_on_sessions(env, tune_seeds)
        out["tuning"] = {"seeds": list(tune_seeds), "reorder_days": tuning.reorder_days.tolist(),
                         "gap_days": tuning.gap_days.tolist(), "reorder_point": tuning.reorder_point.tolist(),
                         "order_up_to": tuning.order_up_to.tolist(), "training_profit_per_day": tuning.profit,
                         "store_runs": tuning.evaluations, "seconds": round(time.time() - start, 1)}
        runs["s_S_tuned"] = (policy_orders(tuning.policy(), "moving_average"), None)
        log(f"(s, S) tuned on seeds {tune_seeds} in {out['tuning']['seconds']} s: reorder days "
            f"{out['tuning']['reorder_days']}, gap days {out['tuning']['gap_days']}")
    for name, (order, act) in runs.items():
        start = time.time()
        per_store, kept = evaluate_orders(env, seeds, order=order, act=act)
        out["per_store"][name] = {k: v.tolist() for k, v in per_store.items()}
        out["scores"][name] = {k: v.to_dict() for k, v in intervals(per_store).items()}
        out["histories"][name] = kept[0]
        out["seconds"][name] = round(time.time() - start, 1)
        log(f"  {name}: {store_line(out['scores'][name])} ({out['seconds'][name]} s)")
    return out


def store_line(scores: dict[str, dict[str, float]]) -> str:
    return "   ".join(f"{k} {v['value']:.3f} [{v['low']:.3f}, {v['high']:.3f}]" for k, v in scores.items())


def store_table(scores: dict[str, dict[str, dict[str, float]]]) -> str:
    """One line per policy: each store metric with its 95% interval over stores (``n`` stores)."""
    pw = max(len("policy"), *map(len, scores)) + 2
    cells = {p: [f"{m[k]['value']:.3f} [{m[k]['low']:.3f}, {m[k]['high']:.3f}]" for k in STORE_METRIC_NAMES]
             for p, m in scores.items()}
    cw = [max(len(n), *(len(c[j]) for c in cells.values())) + 2 for j, n in enumerate(STORE_METRIC_NAMES)]
    head = f"{'policy':<{pw}}" + "".join(f"{n:>{w}}" for n, w in zip(STORE_METRIC_NAMES, cw)) + "   stores"
    lines = [head, "-" * len(head)]
    for p, line in cells.items():
        n = scores[p]["profit_per_day"]["n"]
        lines.append(f"{p:<{pw}}" + "".join(f"{c:>{w}}" for c, w in zip(line, cw)) + f"   {n:>6}")
    return "\n".join(lines)


def plot_store_report(path: Path, histories: dict[str, StoreHistory], title: str) -> None:
    """Stock on hand and daily sales / lost sales over the horizon of one store, a panel per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(histories)
    fig, axes = plt.subplots(n, 1, figsize=(11, 2.3 * n + 0.6), sharex=True, squeeze=False)
    for ax, (name, h) in zip(axes[:, 0], histories.items()):
        days = np.arange(h.num_days)
        ax.plot(days, h.daily("stock")[0], color="tab:blue", label="stock on hand (units)")
        ax.set_ylabel("units")
        twin = ax.twinx()
        twin.bar(days, h.daily("sold")[0], color="tab:green", alpha=0.5, width=1.0, label="sold / day")
        twin.bar(days, h.daily("lost")[0], bottom=h.daily("sold")[0], color="tab:red", alpha=0.5, width=1.0,
                 label="lost / day")
        twin.set_ylabel("units / day")
        ax.set_title(f"{name}: profit/day {h.daily('profit')[0].mean():.1f}", fontsize=9)
        if ax is axes[0, 0]:
            lines = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
            ax.legend(lines, [line.get_label() for line in lines], fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("day")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
