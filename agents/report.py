"""Reports of a training run: the score table, ``results.json`` and the PNG figure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agents.evaluation import EvalResult
from ecomsim.metrics import METRIC_NAMES


def distinct_worlds(rows: dict[str, dict[str, EvalResult]]) -> list[str]:
    """The worlds scored, without ``reference`` when it is the same run as ``sim`` (the env's model is the reference world)."""
    first = next(iter(rows.values()))
    return [w for w in first if not (w == "reference" and first.get("sim") is first[w])]


def score_table(rows: dict[str, dict[str, EvalResult]], reference: str | None = None) -> str:
    """The one score table of the project: a line per world and policy, conversion first, every metric with its 95% CI.

    Args:
        rows: ``{policy: {world: result}}`` as :func:`agents.evaluation.score` returns per policy.
        reference: a policy of ``rows``; adds each policy's conversion divided by its conversion in the same world.
    """
    worlds = distinct_worlds(rows)
    names = ["conversion_rate", *[m for m in METRIC_NAMES if m != "conversion_rate"]]
    cells = {(p, w): [str(by[w].metrics[m]) for m in names] for p, by in rows.items() for w in worlds}
    if reference is not None and reference in rows:
        names.append(f"conv / {reference}")
        for (p, w), line in cells.items():
            base = rows[reference][w].metrics["conversion_rate"].value
            line.append(f"{rows[p][w].metrics['conversion_rate'].value / base:.2f}" if base > 0 else "n/a")
    pw = max(len("policy"), *map(len, rows)) + 2
    ww = max(len("world"), *map(len, worlds)) + 2
    cw = [max(len(n), *(len(c[j]) for c in cells.values())) + 2 for j, n in enumerate(names)]
    head = f"{'policy':<{pw}}{'world':<{ww}}" + "".join(f"{n:>{w}}" for n, w in zip(names, cw))
    lines = [head, "-" * len(head)]
    for world in worlds:
        for policy in rows:
            lines.append(f"{policy:<{pw}}{world:<{ww}}" + "".join(f"{c:>{w}}" for c, w in zip(cells[policy, world], cw)))
    return "\n".join(lines)


def store_report(rows: dict[str, dict[str, EvalResult]]) -> str:
    """With inventory, per world: each policy's share of impressions out of stock, and its scoring store's
    profit and holding cost per store-day and items out at a close (``agents.evaluation.store_books``)."""
    lines = []
    for world in distinct_worlds(rows):
        by = {name: r[world].funnel for name, r in rows.items()}
        lines.append("share of impressions out of stock: "
                     + ", ".join(f"{name} {f['out_of_stock_shown']:.3f}" for name, f in by.items()) + f" ({world})")
        nan = float("nan")
        lines.append("the scoring store per store-day, profit / holding cost / items out: " + ", ".join(
            f"{name} {f.get('store_profit_per_day', nan):.1f} / {f.get('store_holding_per_day', nan):.2f} / "
            f"{f.get('store_items_out', nan):.0f}" for name, f in by.items()) + f" ({world})")
    return "\n".join(lines)


def write_results(path: Path, payload: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(payload, indent=1, default=str))


def run_results(config: Any, summary: dict[str, Any], rows: dict[str, dict[str, EvalResult]], env_options: dict,
                eval_seconds: float, eval_sessions: int, eval_seed: int, model: Path) -> dict[str, Any]:
    """The ``results.json`` of a training script on a session id (``train_agent.py``, ``train_rllib.py``): the
    run's config and training summary, the scores of every policy in every world, the learning curves."""
    return {
        "config": config.to_dict(),
        "resolved_hyperparams": summary["resolved"],
        "timesteps": summary["timesteps"],
        "train_seconds": summary["train_seconds"],
        "eval_seconds": round(eval_seconds, 1),
        "eval_sessions": eval_sessions,
        "eval_seed": eval_seed,
        "env_options": env_options,
        "scores": {name: {w: r.to_dict() for w, r in by.items()} for name, by in rows.items()},
        "learning_curve": summary["eval_history"],
        "training_sessions": summary["rollout_history"],
        "model": str(model),
    }


def plot_run(path: Path, summary: dict[str, Any], rows: dict[str, dict[str, EvalResult]], title: str) -> None:
    """Learning curve (periodic evaluation with its CI, training-session conversion) and conversion per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    hist = summary.get("eval_history") or []
    if hist:
        t = [h["timesteps"] for h in hist]
        conv = [h["conversion_rate"]["value"] for h in hist]
        lo = [h["conversion_rate"]["low"] for h in hist]
        hi = [h["conversion_rate"]["high"] for h in hist]
        ax1.plot(t, conv, "o-", label="periodic evaluation")
        ax1.fill_between(t, lo, hi, alpha=0.25)
    roll = summary.get("rollout_history") or []
    if roll:
        ax1.plot([r["timesteps"] for r in roll], [r["conversion_rate"] for r in roll], alpha=0.5, lw=1,
                 label="training sessions")
    for i, (name, by_world) in enumerate(rows.items()):
        if name in ("ppo", "dqn", "maskable_ppo"):  # the trained agent's own row (its curve is above)
            continue
        ax1.axhline(by_world["sim"].metrics["conversion_rate"].value, ls="--", lw=1, color=f"C{(i + 2) % 10}", label=name)
    ax1.set_xlabel("env steps")
    ax1.set_ylabel("conversion rate")
    ax1.set_title("learning curve (simulator)")
    ax1.legend(fontsize=8)

    worlds = distinct_worlds(rows)
    width = 0.8 / len(worlds)
    names = list(rows)
    for j, world in enumerate(worlds):
        est = [rows[n][world].metrics["conversion_rate"] for n in names]
        x = [i + (j - (len(worlds) - 1) / 2) * width for i in range(len(names))]
        ax2.bar(x, [e.value for e in est], width, label=world,
                yerr=[[e.value - e.low for e in est], [e.high - e.value for e in est]], capsize=3)
    ax2.set_xticks(range(len(names)), names)
    ax2.set_ylabel("conversion rate (95% CI)")
    ax2.set_title("conversion per policy")
    ax2.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
