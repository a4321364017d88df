"""The explanation report: one self-contained HTML page about a trained policy and the DNN shoppers.

Sections (each an HTML ``<section>`` with the id in brackets):

1. **Sessions step by step** (``sessions``): a few seeded sessions of the policy in the
   env; per step the shown items (category, price against the shopper's budget), the
   model's probabilities, the outcome, the shopper's patience and intent as the model
   sees them, and the top reasons (:mod:`ecomsim.explain.shoppers`) for click and purchase.
   The DNN shoppers have no latent patience or intent (only the reference world has);
   the page shows the model's own: ``patience`` = P(stay | nothing clicked) and
   ``intent`` = P(purchase | click) of each item.
2. **What the policy looks at** (``policy``): mean ``|attribution|`` of the policy's
   chosen-candidate score (:mod:`ecomsim.explain.policy`), table and picture.
3. **What drives the shoppers** (``importance``): global importances of the behaviour
   model over reference-world logs (:mod:`ecomsim.explain.importance`), table and picture.
4. **Method** (``method``): baselines, the completeness gaps of this page's attributions.

Pictures are PNGs embedded as base64, so the page is one file with no network.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ecomsim.explain.importance import global_importance, importance_figure
from ecomsim.explain.policy import explain_policy, policy_figure
from ecomsim.explain.shoppers import explain_step

SECTIONS = ("sessions", "policy", "importance", "method")
TRACE_HEADS = ("click", "purchase_total", "purchase", "leave")


@dataclass
class StepTrace:
    """One step of a traced session (lists are per shown slot)."""

    step: int
    items: list[int]
    categories: list[str]
    prices: list[float]
    price_over_budget: list[float]  # price / budget
    p_click: list[float]
    p_purchase: list[float]  # P(click) P(cart | click) P(purchase | cart)
    intent: list[float]  # P(cart | click) P(purchase | cart)
    outcome: list[str]
    patience: float  # P(stay | nothing clicked) before the step
    left: bool
    reasons: list[str]  # per slot, e.g. "click: affinity +0.041, popularity -0.012"
    max_gap: float  # largest completeness gap of this step's attributions


@dataclass
class SessionTrace:
    seed: int
    channel: str
    budget: float
    steps: list[StepTrace] = field(default_factory=list)


def _fmt_reasons(ex, unit: int, n: int) -> str:
    return ", ".join(f"{g} {a:+.3f}" for g, a in ex.top_reasons(unit, n))


def trace_sessions(model: Any, env: Any, num_sessions: int = 3, seed: int = 0, reasons: int = 3,
                   max_steps: int = 30) -> tuple[list[SessionTrace], np.ndarray]:
    """Run ``num_sessions`` seeded sessions of an SB3 ``model`` in ``env`` (single env, DNN shoppers), explaining
    every step before it is taken. Returns the traces and the observations met ``(steps, obs_dim)``."""
    if not isinstance(num_sessions, int) or num_sessions < 1:
        raise ValueError(f"num_sessions must be a positive integer, got {num_sessions!r}")
    core = env.unwrapped.core
    if core.num_envs != 1:
        raise ValueError(f"trace_sessions needs a single env (one session), got a core of {core.num_envs}")
    cat = core.catalog
    traces, observations = [], []
    from ecomsim.config import CHANNELS

    for i in range(num_sessions):
        obs, _ = env.reset(seed=seed + i)
        tr = SessionTrace(seed + i, CHANNELS[int(core.portraits.channel[0])], float(core.portraits.budget[0]))
        for t in range(max_steps):
            observations.append(obs)
            action, _ = model.predict(obs, deterministic=True)
            ex = explain_step(env, action, heads=TRACE_HEADS, level=0)
            items = ex["click"].item.tolist()
            obs, _, terminated, truncated, info = env.step(action)
            outcome = []
            shown = np.asarray(info["items"]).reshape(-1) >= 0  # a candidate picked twice is shown once
            for j in range(len(items)):
                flags = [w for w, key in (("click", "clicked"), ("cart", "carted"), ("buy", "purchased"))
                         if bool(np.asarray(info[key]).reshape(-1)[j])]
                outcome.append(("+".join(flags) or "-") if shown[j] else "not shown (picked twice)")
            ic, ip = ex["click"], ex["purchase_total"]
            tr.steps.append(StepTrace(
                step=t, items=items, categories=[cat.category_names[int(cat.category[it])] for it in items],
                prices=[float(cat.price[it]) for it in items],
                price_over_budget=[float(cat.price[it]) / tr.budget for it in items],
                p_click=ic.output.tolist(), p_purchase=ip.output.tolist(),
                intent=(ip.output / np.maximum(ic.output, 1e-12)).tolist(), outcome=outcome,
                patience=float(1.0 - ex["leave"].output[0]), left=bool(info["left"]),
                reasons=[f"click: {_fmt_reasons(ic, j, reasons)}; purchase: {_fmt_reasons(ip, j, reasons)}"
                         for j in range(len(items))],
                max_gap=float(max(np.abs(e.completeness_gap).max() for e in ex.values())),
            ))
            if terminated or truncated:
                break
        traces.append(tr)
    return traces, np.asarray(observations, dtype=np.float32)


def figure_png(fig) -> str:
    """A matplotlib figure as a base64 PNG ``<img>`` tag."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _table(df: pd.DataFrame, digits: int = 4) -> str:
    return df.to_html(float_format=lambda v: f"{v:.{digits}f}", border=0, classes="tbl")


def _session_html(tr: SessionTrace) -> str:
    rows = []
    for s in tr.steps:
        for j in range(len(s.items)):
            cells = [str(s.step) if j == 0 else "", str(j), str(s.items[j]), s.categories[j], f"{s.prices[j]:.2f}",
                     f"{s.price_over_budget[j]:.2f}", f"{s.p_click[j]:.3f}", f"{s.p_purchase[j]:.4f}",
                     f"{s.intent[j]:.3f}", s.outcome[j], f"{s.patience:.3f}" if j == 0 else "",
                     ("left" if s.left else "") if j == 0 else "", s.reasons[j]]
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    head = ("step", "slot", "item", "category", "price", "price / budget", "P(click)", "P(purchase)", "intent",
            "outcome", "patience", "end", "top reasons (IG, probability units)")
    return (f"<h3>session seed {tr.seed}: channel {html.escape(tr.channel)}, budget {tr.budget:.2f}, "
            f"{len(tr.steps)} steps</h3>\n<table class=\"tbl\"><tr>" + "".join(f"<th>{h}</th>" for h in head)
            + "</tr>\n" + "\n".join(rows) + "</table>")


def build_report(
    model: Any,
    env: Any,
    steps_data: dict | None = None,
    num_sessions: int = 3,
    seed: int = 0,
    policy_observations: int = 256,
    importance_sample: int = 1000,
    title: str = "ecomsim: why the shoppers and the policy act as they do",
    max_steps: int = 30,
) -> str:
    """The report's HTML (sections in the module docstring).

    Args:
        model: a trained SB3 PPO / DQN model for ``env``'s id.
        env: a single ecomsim env with ``user_model="dnn"`` (e.g. ``gym.make(id, ...)``).
        steps_data: logged steps for the global importances (``{slate_size: StepData}``);
            default: 400 fresh reference-world sessions (seed ``seed + 1000``).
        num_sessions: sessions traced step by step (seeds ``seed``, ``seed + 1``, ...).
        seed: the sessions' seed.
        policy_observations: observations the policy attributions average over (the
            traced sessions' first, then more seeded sessions of the policy).
        importance_sample: logged steps of the global importances.
        title: page title.
        max_steps: steps traced per session at most.
    """
    from ecomsim.data.reference_logs import log_reference_world

    core = env.unwrapped.core
    traces, obs = trace_sessions(model, env, num_sessions, seed, max_steps=max_steps)
    extra = seed + num_sessions
    while len(obs) < policy_observations:  # more of the policy's own states, untraced
        o, _ = env.reset(seed=extra)
        extra += 1
        more, done = [o], False
        while not done:
            o, _, te, tr, _ = env.step(model.predict(o, deterministic=True)[0])
            done = te or tr
            more.append(o)
        obs = np.concatenate([obs, np.asarray(more[:-1], dtype=np.float32)])
    pe = explain_policy(model, obs[:policy_observations], core)
    ptable = pe.importance()
    if steps_data is None:
        steps_data = log_reference_world(400, seed=seed + 1000).steps
    tracker = core.shopper.tracker
    gtable = global_importance(core.shopper.net, steps_data, tracker.user_names, tracker.item_names,
                               sample=importance_sample, seed=seed)
    step_gap = max((s.max_gap for tr in traces for s in tr.steps), default=0.0)
    parts = [
        f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1400px;margin:2em auto}.tbl{border-collapse:collapse;"
        "font-size:12px}.tbl td,.tbl th{border:1px solid #ccc;padding:2px 6px}img{max-width:100%}</style>",
        f"</head><body><h1>{html.escape(title)}</h1>",
        f"<p>env {html.escape(type(env.unwrapped).__name__)} ({html.escape(str(core.config.mode))}, "
        f"{core.num_candidates} candidates, slate {core.slate_size}); policy {html.escape(type(model).__name__)}; "
        f"shopper model {html.escape(core.shopper.name)}.</p>",
        '<section id="sessions"><h2>Sessions step by step</h2>',
        "<p>patience: the model's P(stay | nothing clicked) before the step; intent: its P(purchase | click) of "
        "the item; reasons: the three feature groups with the largest Integrated-Gradients credit.</p>",
        *(_session_html(tr) for tr in traces),
        "</section>",
        '<section id="policy"><h2>What the policy looks at</h2>',
        f"<p>Integrated Gradients of the score of the candidate the policy picks, over {len(pe.chosen)} "
        "observations of its own sessions; <code>chosen.*</code>: the picked item's features, <code>others.*</code>: "
        "the rival candidates' (summed).</p>",
        figure_png(policy_figure(ptable)), _table(ptable.head(25)), "</section>",
        '<section id="importance"><h2>What drives the shoppers</h2>',
        f"<p>Mean |attribution| per feature group and head over {importance_sample} logged reference-world steps "
        "(probability units).</p>",
        figure_png(importance_figure(gtable)), _table(gtable), "</section>",
        '<section id="method"><h2>Method</h2><ul>',
        "<li>Shopper attributions: Integrated Gradients (Captum) of each probability, from a baseline of the "
        "average shopper and item (the network's normalisation centre) priced at the shopper's budget, in the "
        f"top slot. Largest completeness gap on this page's sessions: {step_gap:.2e}.</li>",
        "<li>Policy attributions: Integrated Gradients of the chosen candidate's score from the mean observation; "
        f"largest completeness gap {float(np.abs(pe.completeness_gap).max()):.2e} (score units).</li>",
        "</ul></section></body></html>",
    ]
    return "\n".join(parts)


def write_report(path: str, html_text: str) -> str:
    """Write the page to ``path`` (parent folders created); returns the path."""
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        raise ValueError(f"report path {str(p)!r} is a directory; give a file name such as {str(p / 'explain.html')!r}")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(html_text, encoding="utf-8")
    return str(p)
