"""Why the simulated shoppers react as they do: Integrated Gradients over the behaviour model's named inputs.

For one impression (a shopper shown an item at a slot) the DNN behaviour model gives
five probabilities, the *heads* explained here:

============== ===================================== ===================================
head           probability                            unit of explanation
============== ===================================== ===================================
click          P(click), position bias included       one impression
cart           P(add to cart | click)                 one impression
purchase       P(purchase | cart)                     one impression
purchase_total P(click) P(cart | click) P(purchase | cart)   one impression
leave          P(leave after the step | outcome level) one step (the whole slate)
============== ===================================== ===================================

**Attributions.** Integrated Gradients (Sundararajan et al. 2017, computed by Captum)
credits the change of a head's probability from a *baseline* input to the actual input,
``f(x) - f(x')``, to the input features; the credits sum to that change
(*completeness*). The inputs are the user features ``SessionTracker.user_names``,
the item features ``SessionTracker.item_names`` and ``log1p(position)`` (the slot
enters the network outside the feature vector, through the per-channel examination
term; the channel's own exponent stays fixed at the row's channel, so its effect
through position bias is credited to ``position``).

**Baseline** (``baseline="at_budget"``, :func:`baseline_inputs`): each feature at the
network's normalisation centre (``BehaviorNet.user_mean`` / ``item_mean``: for a network
trained by ``ecomsim.shoppers.training`` the training mean of the feature, for a
private one its private estimate), except the four price-against-budget columns, set
to an item priced exactly at the shopper's budget; the position is the top slot
(``log1p(0) = 0``). An attribution reads "how much this feature's value moved the
probability, against an average shopper shown an average item priced at their budget
in the top slot". ``baseline="mean"`` keeps every feature at its centre.

**Accuracy.** The network's ReLUs make the integrand jump along the path, so any
fixed quadrature converges only as ``1 / steps``. The path integral runs in float64
with ``steps`` Gauss-Legendre nodes, and every unit whose completeness gap
``|sum(attributions) - (f(x) - f(x'))|`` exceeds ``tolerance`` is recomputed with
twice the nodes (up to ``max_steps``). At the defaults every gap on 1,000 reference-world
impressions is below 5e-4 (``tests/test_explain.py``); :attr:`Explanation.completeness_gap`
reports it per unit.

**Groups** (``ecomsim.explain.groups``): one-hot and embedding columns sum into
readable groups (``category``, ``embedding``, ``segment``, ``channel``,
``price_vs_budget``, ...).

Captum is the optional extra ``explain`` (``pip install "ecomsim[explain]"``).
"""

from __future__ import annotations

import copy
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from ecomsim.explain.groups import PRICE_VS_BUDGET, feature_groups, input_names
from ecomsim.shoppers.network import BehaviorNet
from ecomsim.shoppers.net_rows import probabilities

EXPLAINED_HEADS = ("click", "cart", "purchase", "purchase_total", "leave")
DEFAULT_STEPS = 64  # Gauss-Legendre nodes of the first pass
DEFAULT_TOLERANCE = 5e-4  # completeness target per unit, probability units (units above it get more nodes)
MAX_STEPS = 8192
GAUSS_MAX = 512  # most Gauss-Legendre nodes (the trapezoid rule beyond; see _rule)
PASS_ROWS = 32768  # path rows per forward pass (memory: ~PASS_ROWS * 64 hidden * 8 bytes per layer)


@dataclass
class Explanation:
    """Attributions of one head over ``B`` explained units (impressions, or steps for ``leave``).

    Attributes:
        head: one of ``EXPLAINED_HEADS``.
        names: ``F`` input names (:func:`input_names`).
        inputs: ``(B, F)`` input values (for ``leave``: item features averaged over the slate).
        attributions: ``(B, F)`` Integrated-Gradients credit, probability units.
        output: ``(B,)`` the head's probability at the input.
        baseline_output: ``(B,)`` the head's probability at the baseline.
        row: ``(B,)`` the session: row of the explained batch (:func:`explain_features`) or
            sub-env index (:func:`explain_step`).
        slot: ``(B,)`` slot of the impression (``-1`` for ``leave``: the whole step).
        item: ``(B,)`` item ids when known, else ``-1``.
    """

    head: str
    names: list[str]
    inputs: np.ndarray
    attributions: np.ndarray
    output: np.ndarray
    baseline_output: np.ndarray
    row: np.ndarray
    slot: np.ndarray
    item: np.ndarray

    @property
    def completeness_gap(self) -> np.ndarray:
        """``(B,)`` ``sum(attributions) - (output - baseline_output)``: zero for exact Integrated Gradients."""
        return self.attributions.sum(axis=1) - (self.output - self.baseline_output)

    def grouped(self) -> tuple[list[str], np.ndarray]:
        """Group names and ``(B, G)`` attributions summed per :func:`feature_groups` group."""
        groups = feature_groups(self.names)
        return list(groups), np.stack([self.attributions[:, idx].sum(axis=1) for idx in groups.values()], axis=1)

    def table(self, by: str = "group") -> pd.DataFrame:
        """Tidy frame: one row per (unit, feature or group): ``row, slot, item, head, feature, attribution``
        (and ``value`` for ``by="feature"``)."""
        if by not in ("group", "feature"):
            raise ValueError(f"by must be 'group' or 'feature', got {by!r}")
        names, attr = self.grouped() if by == "group" else (self.names, self.attributions)
        b, f = attr.shape
        out = pd.DataFrame({
            "row": np.repeat(self.row, f), "slot": np.repeat(self.slot, f), "item": np.repeat(self.item, f),
            "head": self.head, "feature": np.tile(np.asarray(names, dtype=object), b), "attribution": attr.ravel(),
        })
        if by == "feature":
            out["value"] = self.inputs.ravel()
        return out

    def top_reasons(self, unit: int, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` groups with the largest ``|attribution|`` for unit ``unit``: ``[(group, attribution), ...]``."""
        names, attr = self.grouped()
        order = np.argsort(-np.abs(attr[unit]), kind="stable")[:n]
        return [(names[j], float(attr[unit, j])) for j in order]


def baseline_inputs(
    net: BehaviorNet, item_names: list[str] | None, baseline: str | tuple[np.ndarray, np.ndarray] = "at_budget"
) -> tuple[np.ndarray, np.ndarray]:
    """The baseline user ``(U,)`` and item ``(I,)`` features (float64).

    ``"mean"``: every feature at the network's normalisation centre. ``"at_budget"``
    (default): the same, except the price-against-budget columns (``price_vs_budget``
    group) at their value for an item priced exactly at the shopper's budget (all 0):
    their training means are not a typical item (``over_budget`` is skewed: its mean sits
    far over budget), so against the mean an item slightly over budget would look cheap.
    """
    if isinstance(baseline, tuple):
        bu, bi = (np.asarray(b, dtype=np.float64) for b in baseline)
        if bu.shape != net.user_mean.shape or bi.shape != net.item_mean.shape:
            raise ValueError(f"baseline arrays must have shapes {tuple(net.user_mean.shape)} and "
                             f"{tuple(net.item_mean.shape)}, got {bu.shape} and {bi.shape}")
        return bu, bi
    if baseline not in ("at_budget", "mean"):
        raise ValueError(f"baseline must be 'at_budget', 'mean' or a (user, item) pair of arrays, got {baseline!r}")
    bu = net.user_mean.detach().double().numpy().copy()
    bi = net.item_mean.detach().double().numpy().copy()
    if baseline == "at_budget" and item_names:
        for j, name in enumerate(item_names):
            if name in PRICE_VS_BUDGET:
                bi[j] = 0.0  # log(price / budget), max(0, price / budget - 1) and their products with sensitivity
    return bu, bi


def captum_ig():
    """Captum's ``IntegratedGradients`` class, or an ImportError that names the optional extra."""
    try:
        from captum.attr import IntegratedGradients
    except ImportError as exc:  # an optional extra
        raise ImportError(
            "explanations need Captum (the optional extra 'explain'): pip install \"ecomsim[explain]\" "
            f"(or pip install captum); import failed with: {exc}"
        ) from exc
    return IntegratedGradients


def _head_fn(net: BehaviorNet, head: str):
    """``f(user, items, log_positions, channel[, level]) -> (B,)`` probability of ``head`` (``level`` for ``leave``)."""

    def f(user, items, log_positions, channel, *level):
        click, cart, buy, leave = probabilities(net, user, items, log_positions, channel)
        if head == "leave":
            out = leave.gather(1, level[0][:, None])[:, 0]
        else:
            out = {"click": click, "cart": cart, "purchase": buy, "purchase_total": click * cart * buy}[head][:, 0]
        # heads blind to the slot still take it (Captum differentiates every input): its credit is exactly 0
        return out + 0.0 * log_positions.sum(dim=1)

    return f


_NET64: "weakref.WeakKeyDictionary[BehaviorNet, tuple[tuple, BehaviorNet]]" = weakref.WeakKeyDictionary()


def _float64(net: BehaviorNet) -> BehaviorNet:
    """A float64 copy of ``net`` without gradients, cached while ``net`` is unchanged (its tensors' version
    counters: an optimiser step or ``load_state_dict`` bumps them): per-step explanations copy it once."""
    version = tuple(t._version for t in (*net.parameters(), *net.buffers()))
    hit = _NET64.get(net)
    if hit is not None and hit[0] == version:
        return hit[1]
    net64 = copy.deepcopy(net).double().eval()
    for p in net64.parameters():
        p.requires_grad_(False)
    _NET64[net] = (version, net64)
    return net64


def _batch(x: tuple[torch.Tensor, ...], steps: int, units: int | None = None) -> int:
    """Captum's ``internal_batch_size`` (path rows per forward pass): ~32k rows, and at least one per unit."""
    return max(units or x[0].shape[0], PASS_ROWS)


def _rule(steps: int) -> str:
    """Gauss-Legendre up to ``GAUSS_MAX`` nodes, the trapezoid rule beyond (Captum computes Gauss-Legendre nodes
    by an eigenvalue problem, cubic in the nodes: minutes at 4096)."""
    return "gausslegendre" if steps <= GAUSS_MAX else "riemann_trapezoid"


def _integrate(ig, f, x, x0, args, steps: int, tolerance: float, max_steps: int):
    """Captum IG on one chunk, refined where completeness fails: units whose gap exceeds ``tolerance`` are
    recomputed with twice the nodes, up to ``max_steps``. Why: the network's ReLUs make the integrand jump
    along the path, so any fixed quadrature converges only as 1 / steps; a few units need many nodes."""
    with torch.no_grad():
        diff = (f(*x, *args) - f(*x0, *args)).numpy()
    attr = [t.numpy().copy() for t in ig.attribute(x, baselines=x0, additional_forward_args=args, n_steps=steps,
                                                   method=_rule(steps), internal_batch_size=_batch(x, steps))]
    total = lambda a, r: sum(t[r].reshape(len(r), -1).sum(axis=1) for t in a)  # noqa: E731
    todo = np.flatnonzero(np.abs(total(attr, np.arange(len(diff))) - diff) > tolerance)
    while len(todo) and steps < max_steps:
        steps *= 2
        idx = torch.from_numpy(todo)
        sub = ig.attribute(tuple(t[idx] for t in x), baselines=tuple(t[idx] for t in x0),
                           additional_forward_args=tuple(t[idx] for t in args), n_steps=steps, method=_rule(steps),
                           internal_batch_size=_batch(x, steps, len(todo)))
        for t, new in zip(attr, sub):
            t[todo] = new.numpy()
        todo = todo[np.abs(total(attr, todo) - diff[todo]) > tolerance]
    return attr, diff


def explain_features(
    net: BehaviorNet,
    user: np.ndarray,
    items: np.ndarray,
    positions: np.ndarray,
    channel: np.ndarray,
    heads: tuple[str, ...] | list[str] = ("click", "purchase"),
    level: np.ndarray | int = 0,
    item_ids: np.ndarray | None = None,
    user_names: list[str] | None = None,
    item_names: list[str] | None = None,
    baseline: str | tuple[np.ndarray, np.ndarray] = "at_budget",
    steps: int = DEFAULT_STEPS,
    tolerance: float = DEFAULT_TOLERANCE,
    max_steps: int = MAX_STEPS,
    chunk: int = 1024,
) -> dict[str, Explanation]:
    """Integrated-Gradients attributions of the behaviour model's heads for shown items.

    Args:
        net: the behaviour network (not modified: a float64 copy is differentiated).
        user: ``(n, U)`` user features (``SessionTracker.user_names`` order).
        items: ``(n, k, I)`` features of the ``k`` items shown to each session.
        positions: ``(k,)`` slots of the items (top 0) or ``(n, k)`` per row.
        channel: ``(n,)`` channel index (``ecomsim.config.CHANNELS`` order).
        heads: any of ``EXPLAINED_HEADS``.
        level: outcome level of ``leave`` (0 nothing clicked, 1 a click, 2 a purchase):
            an int or ``(n,)``.
        item_ids: ``(n, k)`` item ids, carried into the tables (optional).
        user_names, item_names: feature names (default ``user_i`` / ``item_i``; pass
            the card's ``feature_schema`` lists or the tracker's).
        baseline: ``"at_budget"``, ``"mean"`` or explicit ``(user (U,), item (I,))``
            arrays (see :func:`baseline_inputs`); the baseline position is the top slot.
        steps: Gauss-Legendre nodes of the first pass.
        tolerance: completeness target per unit (probability units): units above it are
            recomputed with doubled nodes until ``max_steps`` (``inf``: one pass).
        max_steps: most nodes per unit.
        chunk: units per Captum call.

    Returns:
        ``{head: Explanation}``; item heads explain the ``n * k`` impressions in row-major
        order (unit ``r * k + j`` is slot ``j`` of row ``r``), ``leave`` the ``n`` steps.
    """
    ig_cls = captum_ig()
    user = np.asarray(user, dtype=np.float64)
    items = np.asarray(items, dtype=np.float64)
    if user.ndim != 2 or items.ndim != 3 or items.shape[0] != user.shape[0]:
        raise ValueError(f"user must be (n, U) and items (n, k, I) with the same n, got {user.shape} and {items.shape}")
    n, k, i_dim = items.shape
    if (user.shape[1], i_dim) != (net.user_mean.shape[0], net.item_mean.shape[0]):
        raise ValueError(f"the network takes {net.user_mean.shape[0]} user and {net.item_mean.shape[0]} item features, "
                         f"got {user.shape[1]} and {i_dim}")
    pos = np.broadcast_to(np.asarray(positions, dtype=np.float64), (n, k))
    if np.any(pos < 0):
        raise ValueError(f"positions must be >= 0 (top slot 0), got {pos.min()}")
    channel = np.asarray(channel, dtype=np.int64).reshape(n)
    bad = [h for h in heads if h not in EXPLAINED_HEADS]
    if bad:
        raise ValueError(f"heads must be among {list(EXPLAINED_HEADS)}, got {bad}")
    if not isinstance(steps, int) or not 2 <= steps <= max_steps:
        raise ValueError(f"steps must be an integer in [2, max_steps={max_steps}], got {steps!r}")
    if not tolerance > 0:
        raise ValueError(f"tolerance must be > 0 (probability units), got {tolerance}")
    levels = np.broadcast_to(np.asarray(level, dtype=np.int64), (n,))
    if np.any((levels < 0) | (levels > 2)):
        raise ValueError(f"level must be 0, 1 or 2 (nothing / click / purchase), got {np.unique(levels).tolist()}")
    names = input_names(user_names or [f"user_{j}" for j in range(user.shape[1])],
                        item_names or [f"item_{j}" for j in range(i_dim)])
    ids = np.full((n, k), -1, dtype=np.int64) if item_ids is None else np.asarray(item_ids, dtype=np.int64).reshape(n, k)

    net64 = _float64(net)
    base_u, base_i = baseline_inputs(net, item_names, baseline)
    out: dict[str, Explanation] = {}
    for head in heads:
        if head == "leave":
            # the leave head sees the whole slate: one unit per step, item credit summed over its slots
            u, it, lp, ch = user, items, np.log1p(pos), channel
            extra = (levels,)
            rows, slots, unit_ids = np.arange(n), np.full(n, -1), np.full(n, -1)
        else:
            u, it = np.repeat(user, k, axis=0), items.reshape(n * k, 1, i_dim)
            lp, ch = np.log1p(pos).reshape(n * k, 1), np.repeat(channel, k)
            extra = ()
            rows, slots, unit_ids = np.repeat(np.arange(n), k), np.tile(np.arange(k), n), ids.ravel()
        f = _head_fn(net64, head)
        ig = ig_cls(f)
        t = lambda a: torch.from_numpy(np.array(a))  # noqa: E731  (a writable copy)
        parts = []
        for a in range(0, len(u), chunk):
            sl = slice(a, a + chunk)
            x = (t(u[sl]), t(it[sl]), t(lp[sl]))
            x0 = (t(np.broadcast_to(base_u, x[0].shape)), t(np.broadcast_to(base_i, x[1].shape)), torch.zeros_like(x[2]))
            args = (t(ch[sl]),) + tuple(t(e[sl]) for e in extra)
            attr, diff = _integrate(ig, f, x, x0, args, steps, tolerance, max_steps)
            with torch.no_grad():
                fx = f(*x, *args).numpy()
            parts.append((
                np.concatenate([attr[0], attr[1].sum(axis=1), attr[2].sum(axis=1, keepdims=True)], axis=1),
                np.concatenate([u[sl], it[sl].mean(axis=1), np.expm1(lp[sl]).mean(axis=1, keepdims=True)], axis=1),
                fx, fx - diff,
            ))
        cat = [np.concatenate([p[j] for p in parts]) for j in range(4)]
        out[head] = Explanation(head, names, cat[1], cat[0], cat[2], cat[3], rows, slots, unit_ids)
    return out


def _shopper_model(env: Any):
    core = env.unwrapped.core
    model = core.shopper
    if not (hasattr(model, "net") and hasattr(model, "features")):
        raise ValueError(
            f"explanations need the learned DNN shopper model (user_model='dnn'); this env's shopper model is "
            f"{getattr(model, 'name', type(model).__name__)!r} (the reference world's equations are in "
            "ecomsim.shoppers.reference)"
        )
    return core, model


def explain_step(
    env: Any,
    action: Any,
    heads: tuple[str, ...] | list[str] = ("click", "purchase"),
    rows: np.ndarray | None = None,
    level: np.ndarray | int = 0,
    steps: int = DEFAULT_STEPS,
) -> dict[str, Explanation]:
    """Explain what the env's DNN shoppers would do if shown ``action`` now (call before ``env.step(action)``).

    Args:
        env: an ecomsim env (single, vector or wrapped) with ``user_model="dnn"``.
        action: the action ``env.step`` would take (a candidate index, a slate, or the
            vector env's batch of them).
        heads: any of ``EXPLAINED_HEADS``.
        rows: sessions to explain (default all; a single env has one).
        level: outcome level of ``leave`` (see :func:`explain_features`).
        steps: Gauss-Legendre nodes.

    Features are read through the shopper model's public ``features(items, rows)``;
    the shown items are the session's current candidates at the action's slots
    (``core.candidates``), positions are the slots. Pure: the env does not change.
    """
    core, model = _shopper_model(env)
    n = core.num_envs
    act = np.asarray(action)
    if n == 1 and act.ndim == (0 if core.slate_size == 1 and core.config.mode == "recommend" else 1):
        act = act[None]
    slots = core.check_actions(act)
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    items = np.take_along_axis(core.candidates[rows], slots[rows], axis=1)
    user, itemf = model.features(items, rows)
    tracker = model.tracker
    out = explain_features(model.net, user, itemf, np.arange(core.slate_size), core.portraits.channel[rows],
                           heads=heads, level=level, item_ids=items, user_names=tracker.user_names,
                           item_names=tracker.item_names, steps=steps)
    for e in out.values():
        e.row = rows[e.row]  # the sub-env index, not the position in ``rows``
    return out
