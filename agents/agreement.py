"""Policy agreement: do policies score the same in a learned simulator as in the reference world?

A simulator is useful for choosing policies when a policy's conversion in it is close to its
conversion in the world it imitates, and when policies rank the same in both.
:func:`agreement` runs the four baselines for the same seeded sessions in a behaviour model's
simulator and in the reference world (the reference world's own catalog: the one the models
are trained on) and reports, per policy, both scores and the relative gap with its 95%
interval; :func:`relative_gap` is that interval for any pair of estimates (the
sim-to-reference gap of a trained agent, ``scripts/uncertainty_experiment.py``).

Used by ``scripts/behavior_report.py`` and ``scripts/privacy_report.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.baselines import BASELINES
from agents.evaluation import evaluate
from ecomsim.envs import EcomVectorEnv

POLICIES = ("random", "popularity", "click_greedy", "greedy")
REQUIRED = ("random", "popularity", "greedy")  # the ranking that must hold (click_greedy and greedy are close)
GAP_TARGET = 0.10  # |conversion in the model / conversion in the reference world - 1| a good model stays within
METRICS = ("conversion_rate", "ctr", "session_length", "revenue_per_session")
AGREEMENT_SEED = 7


def relative_gap(sim: dict[str, float], ref: dict[str, float]) -> tuple[float, list[float]]:
    """``(sim / ref - 1, its 95% interval)`` of two estimates given as ``{"value", "low", "high"}`` dicts.

    The interval is the delta method on the log of the ratio, from each estimate's own 95%
    interval (independent samples): the sampling noise of the gap itself.
    """
    ratio = sim["value"] / ref["value"]
    se = np.hypot(*((e["high"] - e["low"]) / (2 * 1.96 * e["value"]) for e in (ref, sim)))
    return ratio - 1.0, [float(ratio * np.exp(-1.96 * se) - 1.0), float(ratio * np.exp(1.96 * se) - 1.0)]


def agreement(weights: str | None, sessions: int, num_envs: int, seed: int = AGREEMENT_SEED) -> dict[str, Any]:
    """The baselines' scores in the behaviour model at ``weights`` (``None``: the shipped one) and in the
    reference world: per policy both scores, the relative gaps of conversion and CTR with their 95%
    intervals, and whether the policies rank the same (all four, and ``REQUIRED``)."""
    from ecomsim.shoppers.behavior import load_behavior_model

    rows = {}
    for name in POLICIES:
        row: dict[str, Any] = {}
        for world in ("reference", "dnn"):
            shopper = load_behavior_model(path=weights) if world == "dnn" else None
            env = EcomVectorEnv(num_envs=num_envs, user_model="reference", catalog="reference", shopper_obj=shopper)
            r = evaluate(BASELINES[name](), env, sessions, seed=seed)
            row[world] = {k: r.metrics[k].to_dict() for k in METRICS}
        for metric in ("conversion_rate", "ctr"):
            gap, ci = relative_gap(row["dnn"][metric], row["reference"][metric])
            row[f"{metric}_relative_gap"] = gap
            row[f"{metric}_relative_gap_ci95"] = ci
            row[f"{metric}_within_10pct"] = abs(gap) <= GAP_TARGET
        rows[name] = row
    out: dict[str, Any] = {"policies": rows, "sessions_per_policy": sessions}
    for label, names in (("required", REQUIRED), ("all", POLICIES)):
        for metric in ("conversion_rate", "ctr"):
            rank = {w: sorted(names, key=lambda n: -rows[n][w][metric]["value"]) for w in ("reference", "dnn")}
            out[f"ranking_{metric}_{label}"] = {**rank, "same": rank["reference"] == rank["dnn"]}
    return out
