"""Off-policy evaluation benchmark: IPS, SNIPS and DR estimates of target policies' conversion
from logged sessions, against the simulator's on-policy truth, at several log sizes.

For each log size a fresh log is drawn under the logging policy (exact propensities); every
target's conversion rate is estimated from it (estimand and formulas: ``agents/ope.py``) and
compared with the target's on-policy conversion rate from ``agents.evaluation.evaluate``
(many seeded sessions, Wilson 95% interval). DR's reward model is a logistic regression
fitted on the log; the ``DR-oracle-q`` rows plug in the simulator's own P(purchase) instead
(a reference for what a perfect immediate-reward model buys, not an estimator one could run).

    python scripts/ope_benchmark.py                                  # 1k, 10k, 100k logged steps
    python scripts/ope_benchmark.py --sizes 1000,10000 --truth-sessions 5000 --json
    python scripts/ope_benchmark.py --offline runs/cql/card.json     # add the offline CQL policy
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np

from agents.cli import option, parse_args, pin_threads, run
from agents.evaluation import evaluate, make_eval_env
from agents.offline import load_offline_policy
from agents.offline_data import collect
from agents.ope import effective_sessions, estimate, fit_purchase_model, padded_inputs
from agents.propensity import OneHotPolicy, SoftmaxPolicy, UniformPolicy
from ecomsim.registration import env_kwargs


@dataclass
class Args:
    env_id: str = "ecomsim/Recommend-v0"
    """a one-item-per-step id"""
    user_model: str | None = None
    """the simulator's shopper model: dnn | reference (default: the env's)"""
    max_steps: int | None = option(None, min=1)
    """session step limit (default: the env's 50); short horizons show where IS works"""
    sizes: tuple[int, ...] = option((1000, 10_000, 100_000), min=50)
    """logged steps per log, comma-separated"""
    truth_sessions: int = option(20_000, min=1)
    """on-policy sessions per target for the truth"""
    temperature: float = 0.5
    """logging policy: softmax temperature on log P(purchase)"""
    epsilon: float = 0.1
    """logging policy: share of uniform exploration"""
    offline: str | None = None
    """card of an offline-trained Q-network (adds target 'cql')"""
    resamples: int = option(500, min=10)
    """bootstrap resamples per interval"""
    seed: int = 0
    """seed of the logs (log k uses seed + 1000 k); the truth uses 10**6 + seed"""
    num_envs: int = option(256, min=1)
    """sessions stepped together"""
    oracle: bool = True
    """add the DR-oracle-q reference rows (--no-oracle leaves them out)"""
    plot: str = "ope_benchmark.png"
    """PNG written here ('' for none)"""
    json: bool = False
    """print JSON instead of the markdown table"""
    json_out: str | None = None
    """also write the JSON to this file"""
    threads: int = option(1, min=1)
    """torch and BLAS threads"""

    def __post_init__(self) -> None:
        if not self.sizes:
            raise ValueError("--sizes must hold at least one log size, got none")
        for flag, path in (("--plot", self.plot), ("--json-out", self.json_out)):
            if path and Path(path).is_dir():
                raise ValueError(f"{flag} must be a file path, got the directory {path!r}")


def make_targets(args):
    """Name -> factory of a fresh target policy (a DistributionPolicy)."""
    targets = {
        "logging": lambda: SoftmaxPolicy("greedy", args.temperature, args.epsilon),
        "uniform": UniformPolicy,
        "soft_greedy": lambda: SoftmaxPolicy("greedy", 0.25, 0.05),
        "greedy": lambda: OneHotPolicy("greedy"),
        "click_greedy": lambda: OneHotPolicy("click_greedy"),
        "popularity": lambda: OneHotPolicy("popularity"),
    }
    if args.offline:
        cql = load_offline_policy(args.offline, env_id=args.env_id, name="cql")
        targets["cql"] = lambda: OneHotPolicy(cql)
    return targets


def on_policy_truth(targets, options, sessions: int, seed: int, num_envs: int) -> dict:
    out = {}
    for name, make in targets.items():
        env = make_eval_env(options, min(num_envs, sessions))
        out[name] = evaluate(make(), env, sessions, seed=seed).metrics["conversion_rate"]
    return out


def run_size(size: int, k: int, args, options, targets, mean_len: float) -> tuple[dict, object]:
    """Log about ``size`` steps, estimate every target; returns (rows by target, the log)."""
    seed = args.seed + 1000 * k
    sessions = int(math.ceil(size / mean_len * 1.15)) + 10
    logs = collect(SoftmaxPolicy("greedy", args.temperature, args.epsilon), options, sessions, seed=seed,
                   num_envs=args.num_envs, targets={n: f() for n, f in targets.items()},
                   oracle=args.oracle, env_id=args.env_id)
    enough = np.flatnonzero(logs.starts[1:] >= size)
    logs = logs.head(int(enough[0]) + 1 if len(enough) else logs.num_episodes)
    m = logs.logging_probs.shape[1]
    purchased = logs.infos["purchases"] > 0
    model = fit_purchase_model(logs.obs, logs.actions, purchased, logs.episode_of_step, logs.meta["context_dim"], m, seed=seed)
    rng = np.random.default_rng(seed)
    rows = {}
    for name in targets:
        tp = logs.target_probs[name]
        inputs = padded_inputs(logs, tp, model)
        res = estimate(inputs, rng, args.resamples)
        if logs.oracle_purchase is not None:
            res["DR-oracle-q"] = estimate(padded_inputs(logs, tp, logs.oracle_purchase), rng, args.resamples)["DR"]
        rows[name] = (res, effective_sessions(inputs))
    return rows, logs


def format_markdown(results: list[dict]) -> str:
    head = ("| estimator | logged steps (sessions) | target | estimate [95% CI] | on-policy truth [95% CI] "
            "| relative error | effective sessions |")
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in results:
        e, t = r["estimate"], r["truth"]
        lines.append(f"| {r['estimator']} | {r['steps']:,} ({r['sessions']:,}) | {r['target']} | "
                     f"{e['value']:.4f} [{e['low']:.4f}, {e['high']:.4f}] | {t['value']:.4f} [{t['low']:.4f}, {t['high']:.4f}] | "
                     f"{r['relative_error']:+.1%} | {r['effective_sessions']:,.1f} |")
    return "\n".join(lines)


def format_summary(results: list[dict]) -> str:
    """One row per target at the largest log: truth, each estimator's estimate (relative error), effective sessions."""
    size = max(r["size"] for r in results)
    rows = [r for r in results if r["size"] == size]
    estimators = list(dict.fromkeys(r["estimator"] for r in rows))
    head = f"| target | on-policy truth | {' | '.join(estimators)} | effective sessions |"
    lines = [head, "|---" * (len(estimators) + 3) + "|"]
    for target in dict.fromkeys(r["target"] for r in rows):
        by = {r["estimator"]: r for r in rows if r["target"] == target}
        first = next(iter(by.values()))
        cells = " | ".join(f"{by[e]['estimate']['value']:.3f} ({by[e]['relative_error']:+.0%})" for e in estimators)
        lines.append(f"| {target} | {first['truth']['value']:.3f} | {cells} | {first['effective_sessions']:,.1f} |")
    return f"at {rows[0]['steps']:,} logged steps ({rows[0]['sessions']:,} sessions):\n\n" + "\n".join(lines)


def plot(results: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = list(dict.fromkeys(r["target"] for r in results))
    estimators = list(dict.fromkeys(r["estimator"] for r in results))
    cols = min(4, len(targets))
    nrows = int(math.ceil(len(targets) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows), squeeze=False)
    for ax, target in zip(axes.ravel(), targets):
        rs = [r for r in results if r["target"] == target]
        truth = rs[0]["truth"]
        ax.axhspan(truth["low"], truth["high"], color="0.85", label="on-policy truth (95% CI)")
        ax.axhline(truth["value"], color="0.3", lw=1)
        for j, est in enumerate(estimators):
            pts = [r for r in rs if r["estimator"] == est]
            x = np.array([r["steps"] for r in pts], dtype=float) * (1.0 + 0.08 * (j - (len(estimators) - 1) / 2))
            y = np.array([r["estimate"]["value"] for r in pts])
            err = np.array([[r["estimate"]["value"] - r["estimate"]["low"], r["estimate"]["high"] - r["estimate"]["value"]] for r in pts]).T
            ax.errorbar(x, y, yerr=err, fmt="o", ms=3, capsize=2, label=est)
        ax.set_xscale("log")
        ax.set_title(target)
        ax.set_xlabel("logged steps")
        top = max(2.5 * truth["high"], 0.05)  # a window around the truth: wild estimates leave it, the scale stays readable
        ax.set_ylim(-0.2 * top, top)
    for ax in axes.ravel()[len(targets):]:
        ax.axis("off")
    axes[0, 0].set_ylabel("conversion rate")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    fig.suptitle("OPE of conversion from logged sessions vs on-policy truth (error bars: bootstrap 95% CI)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    options = env_kwargs(args.env_id, user_model=args.user_model, max_steps=args.max_steps)
    if options.get("mode") != "recommend":
        raise ValueError(f"--env-id must be a one-item-per-step id (mode 'recommend'), got {args.env_id!r}")
    targets = make_targets(args)
    t0 = time.perf_counter()
    truth = on_policy_truth(targets, options, args.truth_sessions, 10**6 + args.seed, args.num_envs)
    t_truth = time.perf_counter() - t0
    pilot = collect(SoftmaxPolicy("greedy", args.temperature, args.epsilon), options, 256, seed=args.seed + 999, num_envs=args.num_envs)
    results, mean_len = [], float(pilot.lengths.mean())  # sizes the logs (sessions per logged step); later logs refine it
    for k, size in enumerate(sorted(args.sizes)):
        rows, logs = run_size(size, k, args, options, targets, mean_len)
        mean_len = float(logs.lengths.mean())
        for target, (by_est, ess) in rows.items():
            for est, e in by_est.items():
                t = truth[target]
                results.append({"estimator": est, "target": target, "size": size, "steps": logs.num_steps,
                                "sessions": logs.num_episodes, "estimate": e.to_dict(), "truth": t.to_dict(),
                                "relative_error": (e.value - t.value) / t.value if t.value else float("nan"),
                                "truth_in_ci": bool(e.low <= t.value <= e.high), "effective_sessions": ess})
    order = {n: i for i, n in enumerate(targets)}
    est_order = {e: i for i, e in enumerate(("IPS", "SNIPS", "DR", "DR-oracle-q"))}
    results.sort(key=lambda r: (order[r["target"]], est_order[r["estimator"]], r["size"]))
    if args.plot:
        plot(results, args.plot)
    meta = {"env_id": args.env_id, "env_options": options, "truth_sessions": args.truth_sessions,
            "logging_policy": {"scores": "greedy", "temperature": args.temperature, "epsilon": args.epsilon},
            "estimand": "conversion rate of a session run entirely under the target (agents/ope.py)",
            "reward_model": "logistic regression, context + shown candidate features, 2-fold cross-fitted by session",
            "seconds": round(time.perf_counter() - t0, 1), "truth_seconds": round(t_truth, 1)}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({**meta, "results": results}, indent=1) + "\n")
    if args.json:
        print(json.dumps({**meta, "results": results}, indent=1))
    else:
        print(f"{args.env_id} {options}: conversion rate, logging policy softmax(log P(purchase) / {args.temperature}) "
              f"with {args.epsilon} uniform; truth from {args.truth_sessions} on-policy sessions per target")
        print(format_markdown(results))
        print()
        print(format_summary(results))
    return 0


if __name__ == "__main__":
    run(main)
