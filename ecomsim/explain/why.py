"""Why the shoppers did what they did, step by step: ``info["why"]`` and session traces people can read.

A step is explained from the state *before* it (the shown items' features are computed from
it; the DNN's fused step computes them inside the compiled kernel, gone afterwards): the env
calls :class:`StepExplainer` with the step's slots just before ``core.step``. It only reads
the state (``SimulationCore.gather``, the model's ``features`` / ``reaction``): the random
streams do not move, so outcomes with ``explain=True`` equal those without, bit for bit.

One record per session (``None`` for a session the step skips: just restarted by an autoreset)::

    {"unit": "probability" | "logit", "patience": float, "intent": float,
     "items": [{"slot": 0, "item": 1234, "p_click": 0.08, "p_purchase": 0.004,
                "reasons": {"click": [("affinity", 0.041), ...], "purchase": [...]}}, ...]}

``items`` lists the slots shown (a candidate picked twice is shown in its first slot only).

**The DNN shoppers** (``unit="probability"``): Integrated-Gradients attributions
(:mod:`ecomsim.explain.shoppers`, Captum) of ``click`` (P(click)) and ``purchase``
(P(click) P(cart | click) P(purchase | cart)) to the readable feature groups, against the
``at_budget`` baseline; the ``reasons`` are the groups of largest ``|credit|``, in probability
units. ``patience`` is the model's P(stay | nothing clicked) before the step, ``intent`` its mean
P(cart | click) P(purchase | cart) over the shown items. With ``shopper_sampling="per_session"``
each session is explained through its own member.

**The reference world** (``unit="logit"``): it is additive in logit space, so its "why" is
exact with no attribution method: the terms of its equations (``ReferenceWorld.logit_terms``),
against their intercepts. ``click``: the attraction logit's terms and ``position`` (the log
attention); ``cart`` and ``purchase`` (given cart): their logits' terms. ``patience`` and
``intent`` are its latent patience ``p`` (steps of tolerance) and intent ``w`` (a logit offset).

:func:`reason_strings` turns a record into one line per item; :func:`slot_reasons` into the
lines the ``ansi`` render prints under each slot (``ecomsim.render``).
"""

from __future__ import annotations

from typing import Any

import numpy as np


DNN_HEADS = {"click": "click", "purchase": "purchase_total"}  # why's head -> the explained probability


def _top(names: list[str], values: np.ndarray, n: int) -> list[tuple[str, float]]:
    """The ``n`` largest ``|values|`` with their names (exact zeros left out: a term that played no part)."""
    order = np.argsort(-np.abs(values), kind="stable")[:n]
    return [(names[j], float(values[j])) for j in order if values[j] != 0.0]


class StepExplainer:
    """The ``info["why"]`` of a step (records in the module docstring), computed before the step.

    Args:
        core: the env's core (``env.unwrapped.core``).
        top: reasons per item and head.
        reasons: attribute reasons (``False``: only the shopper's state and probabilities, no attribution:
            what an ``ansi`` render shows of an env without ``explain``).
        steps, tolerance, max_steps: the DNN's Integrated-Gradients quadrature (``explain_features``):
            looser than the library's defaults (5e-4, up to 8192 nodes): a step's reasons are a ranking of
            the largest credits, which a completeness gap of 2e-3 does not change, and the per-step cost
            stays a few milliseconds per item (the Gauss-Legendre nodes of a large rule cost more than
            the forward passes).
    """

    def __init__(self, core: Any, top: int = 3, reasons: bool = True, steps: int = 32, tolerance: float = 2e-3,
                 max_steps: int = 256) -> None:
        self.core, self.top, self.reasons = core, top, reasons
        self.steps, self.tolerance, self.max_steps = steps, tolerance, max_steps
        if reasons and hasattr(core.shopper, "features"):
            from ecomsim.explain.shoppers import captum_ig

            captum_ig()  # the DNN's reasons need Captum: say so when the env is built, not at the first step

    def __call__(self, slots: np.ndarray, skip: np.ndarray | None = None) -> list[dict[str, Any] | None]:
        core = self.core
        items, shown = core.gather(slots, skip)
        rows = np.arange(core.num_envs) if skip is None else np.flatnonzero(~skip)
        out: list[dict[str, Any] | None] = [None] * core.num_envs
        if len(rows) == 0:
            return out
        it, sh = items[rows], shown[rows]
        positions = np.arange(core.slate_size, dtype=np.float64)
        model = core.shopper
        r = model.reaction(it, positions, rows)
        p_purchase = r.purchase_total
        latent = hasattr(model, "logit_terms")  # the reference world: its latent patience and intent
        if latent:
            patience, intent, unit = model.patience[rows], model.intent[rows], "logit"
        else:
            patience = 1.0 - r.leave[:, 0]
            intent = (r.cart * r.purchase * sh).sum(axis=1) / np.maximum(sh.sum(axis=1), 1)
            unit = "probability"
        why = self._reasons(it, positions, rows) if self.reasons else None
        for i, row in enumerate(rows):
            records = []
            for j in np.flatnonzero(sh[i]):
                rec = {"slot": int(j), "item": int(it[i, j]), "p_click": float(r.click[i, j]),
                       "p_purchase": float(p_purchase[i, j])}
                if why is not None:
                    rec["reasons"] = {head: why[head][i][j] for head in why}
                records.append(rec)
            out[row] = {"unit": unit, "patience": float(patience[i]), "intent": float(intent[i]), "items": records}
        return out

    def _reasons(self, items: np.ndarray, positions: np.ndarray, rows: np.ndarray) -> dict[str, list[list]]:
        """``{head: [per row: [per slot: [(group, value), ...]]]}`` for every slot (shown or not)."""
        model, top = self.core.shopper, self.top
        n, k = items.shape
        if hasattr(model, "logit_terms"):
            terms = model.logit_terms(items, positions, rows)
            out = {}
            for head, parts in terms.items():
                names = [t for t in parts if t != "intercept"]
                stack = np.stack([parts[t] for t in names], axis=2)  # (n, k, terms)
                out[head] = [[_top(names, stack[i, j], top) for j in range(k)] for i in range(n)]
            return out
        from ecomsim.explain.shoppers import explain_features

        out = {head: [[None] * k for _ in range(n)] for head in DNN_HEADS}
        tracker = model.tracker
        for net, local in model.session_networks(rows):
            user, itemf = model.features(items[local], rows[local])
            ex = explain_features(net, user, itemf, positions, self.core.portraits.channel[rows[local]],
                                  heads=tuple(DNN_HEADS.values()), item_ids=items[local],
                                  user_names=tracker.user_names, item_names=tracker.item_names, steps=self.steps,
                                  tolerance=self.tolerance, max_steps=self.max_steps)
            for head, explained in DNN_HEADS.items():
                names, attr = ex[explained].grouped()
                for u in range(len(attr)):  # unit u = slot u % k of row u // k
                    out[head][local[u // k]][u % k] = _top(names, attr[u], top)
        return out


def reason_strings(record: dict[str, Any] | None, n: int | None = None) -> list[str]:
    """One line per shown item of a ``why`` record: ``"click: affinity +0.041, popularity -0.012; purchase:
    price_vs_budget -0.031"`` (``n`` reasons per head, default all the record holds)."""
    if record is None:
        return []
    lines = []
    for rec in record["items"]:
        heads = rec.get("reasons")
        if not heads:
            lines.append("")
            continue
        lines.append("; ".join(f"{head}: " + ", ".join(f"{g} {v:+.3f}" for g, v in reasons[:n])
                               for head, reasons in heads.items()))
    return lines


def slot_reasons(record: dict[str, Any] | None, slate_size: int) -> list[str]:
    """``slate_size`` strings, slot by slot, of a ``why`` record (:func:`reason_strings`; ``""`` for a slot with
    none): the ``reasons`` the ``ansi`` render and the picture print under each shown item."""
    out = [""] * slate_size
    if record is not None:
        for rec, line in zip(record["items"], reason_strings(record)):
            out[rec["slot"]] = line
    return out
