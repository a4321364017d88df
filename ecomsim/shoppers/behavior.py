"""The learned DNN behaviour model: shoppers driven by a torch network trained on logs.

Three pieces, one concept (a shopper model you can ship as data):

* :class:`SessionTracker` turns what the core observes (portrait, counts, items
  shown, clicked and bought) into the network's features. It keeps a few running
  aggregates of its own, all computed from observable events only:

  ================== ===========================================================
  aggregate          update after each step
  ================== ===========================================================
  ``interest``       starts at the profile interest; moves ``DRIFT`` of the way to
                     the mean embedding of the items clicked (unit norm)
  ``irr_sum``        += mean over shown items of ``max(0, A_MIN - affinity)``
  ``irr_ewma``       ``DECAY * irr_ewma + mean irrelevance``, halved on a click
  ``rep_ewma``       ``DECAY * rep_ewma + mean repeat count``, halved on a click
  ``click_quality``  += quality of each clicked item
  ================== ===========================================================

  Their constants match the reference world's time scales (``ecomsim.shoppers.reference``),
  so a network trained on its logs can track its latent fatigue, intent and
  drifting interest; only the initial patience stays hidden.
* :class:`BehaviorNet`: a shopper encoder (portrait + session -> vector), joined
  with each item's features, heads for attraction, cart | click and purchase |
  cart; a leave head on the shopper vector and the mean of the slate's item
  vectors (3 outcome levels); and a per-channel power-law position bias
  ``P(examine slot k) = (1 + k) ** -softplus(s_c)`` as in position-based click
  models, so it extrapolates to any slot. Platt scaling per head is stored with
  the weights.
* :class:`BehaviorModel`: the :class:`~ecomsim.shoppers.base.ShopperModel` the env uses:
  one batched forward per core step. Its features and aggregates are computed by
  compiled kernels (``ecomsim.sim.kernels``) from the same definitions as the
  tracker's numpy methods, which build the training data; the forward is the
  compiled per-session one for small batches (several times faster than torch at
  batch 1) and torch under ``inference_mode`` above ``KERNEL_MAX_ROWS`` rows.

Item features come from the catalog's columns only (category one-hot by name, log
price, quality, relative popularity, embedding), never item ids, so any catalog
with the same category names and embedding size (e.g. a GAN catalog) works.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ecomsim.sim import kernels
from ecomsim.cards import read_card
from ecomsim.config import CHANNELS
from ecomsim.sim.observation import LOG_BUDGET_CENTER
from ecomsim.shoppers.population import SEGMENTS
from ecomsim.shoppers.base import NUM_LEAVE_LEVELS, Reaction, ShopperModel

if TYPE_CHECKING:
    from ecomsim.sim.core import SimulationCore

FEATURE_VERSION = "ecomsim-behavior-features-v1"
WEIGHTS_FORMAT = "ecomsim-behavior-v1"
A_MIN = kernels.DNN_A_MIN  # affinity below which an item counts as irrelevant
DECAY = kernels.DNN_DECAY  # per-step decay of the irrelevance / repeat averages
DRIFT = kernels.DNN_DRIFT  # share of the way the session interest moves to clicked items
HEADS = ("click", "cart", "purchase", "leave")
KERNEL_MAX_ROWS = 128  # item rows up to which the compiled forward is used on CPU (torch above; see the benchmark)
DYNAMIC_ITEM_FEATURES = [
    "affinity", "irrelevance", "repeats", "category_bought", "log_price_over_budget", "over_budget",
    "sensitivity_x_log_price_over_budget", "sensitivity_x_over_budget",
]


# ============================================================== features
class SessionTracker:
    """Observable session aggregates and feature matrices for ``core.num_envs`` sessions.

    Args:
        core: the simulation core whose portraits and counters are read.
    """

    def __init__(self, core: "SimulationCore") -> None:
        self.core = core
        n, d = core.num_envs, core.catalog.embed_dim
        self.interest = np.zeros((n, d))
        # the four running sums are rows of one block (one argument of the compiled kernels); update in place
        self.state = np.zeros((4, n))
        self.click_quality, self.irr_sum, self.irr_ewma, self.rep_ewma = self.state
        # (items, affinity, repeat counts) of the last all-session item_features call: the step's
        # update needs the same two arrays for the same items, and nothing they depend on has changed
        self._step_cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._quality = core.catalog.quality
        self._log_price = np.log(core.catalog.price)
        self._price = core.catalog.price
        self.item_names = list(core.item_feature_names) + DYNAMIC_ITEM_FEATURES
        self.user_names = (
            [f"segment_{s}" for s in SEGMENTS]
            + [f"channel_{c}" for c in CHANNELS]
            + ["log_budget", "price_sensitivity", "steps", "clicks", "carts", "purchases", "no_click_run", "last_clicked"]
            + [f"bought_{c}" for c in core.catalog.category_names]
            + ["click_quality", "irr_sum", "irr_ewma", "rep_ewma"]
        )

    def reset(self, idx: np.ndarray) -> None:
        self._step_cache = None
        self.interest[idx] = self.core.portraits.interest[idx]
        self.state[:, idx] = 0.0

    def affinity(self, items: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """``(n, k)`` cosine of the session interest with each item."""
        u = self.interest if rows is None else self.interest[rows]
        # einsum, not matmul: the shipped weights were trained on features computed this way, bit for bit
        return np.einsum("nkd,nd->nk", self.core._emb64[items], u)

    def update(self, items: np.ndarray, shown: np.ndarray, clicked: np.ndarray) -> None:
        """Advance the aggregates after a step (call before the core updates its counters)."""
        cache, self._step_cache = self._step_cache, None
        if cache is not None and cache[0].shape == items.shape and np.array_equal(cache[0], items):
            aff, rep = cache[1], cache[2]
        else:
            aff, rep = self.affinity(items), self.core.repeat_counts(items)
        irr = np.maximum(0.0, A_MIN - aff)
        nshown = np.maximum(shown.sum(axis=1), 1)
        mean_irr = (irr * shown).sum(axis=1) / nshown
        self.irr_sum += mean_irr
        any_click = clicked.any(axis=1)
        relief = np.where(any_click, 0.5, 1.0)
        self.irr_ewma[:] = (DECAY * self.irr_ewma + mean_irr) * relief
        self.rep_ewma[:] = (DECAY * self.rep_ewma + (rep * shown).sum(axis=1) / nshown) * relief
        self.click_quality += (self._quality[items] * clicked).sum(axis=1)
        if any_click.any():
            r = np.flatnonzero(any_click)
            c = clicked[r]
            e = (self.core._emb64[items[r]] * c[:, :, None]).sum(axis=1) / c.sum(axis=1, keepdims=True)
            u = self.interest[r] + DRIFT * (e - self.interest[r])
            self.interest[r] = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-9)

    def user_features(self, rows: np.ndarray | None = None) -> np.ndarray:
        """``(n, len(user_names))`` float32 portrait and session features."""
        c, pt = self.core, self.core.portraits
        sel = (lambda a: a) if rows is None else (lambda a: a[rows])
        seg, ch = sel(pt.segment), sel(pt.channel)
        n = len(seg)
        nseg, nch = len(SEGMENTS), len(CHANNELS)
        out = np.empty((n, len(self.user_names)), dtype=np.float32)
        out[:, : nseg + nch] = 0.0
        out[np.arange(n), seg] = 1.0
        out[np.arange(n), nseg + ch] = 1.0
        j = nseg + nch
        out[:, j] = np.log(sel(pt.budget)) - LOG_BUDGET_CENTER
        out[:, j + 1] = sel(pt.price_sensitivity)
        out[:, j + 2] = sel(c.step_count) / 10.0
        out[:, j + 3] = np.log1p(sel(c.clicks))
        out[:, j + 4] = np.log1p(sel(c.carts))
        out[:, j + 5] = sel(c.purchases)
        out[:, j + 6] = sel(c.no_click_run) / 10.0
        out[:, j + 7] = sel(c.last_clicked)
        j += 8
        nc = c.catalog.num_categories
        out[:, j : j + nc] = sel(c.bought)
        j += nc
        out[:, j] = sel(self.click_quality)
        out[:, j + 1] = sel(self.irr_sum) / 5.0
        out[:, j + 2] = sel(self.irr_ewma)
        out[:, j + 3] = sel(self.rep_ewma)
        return out

    def item_features(self, items: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """``(n, k, len(item_names))`` float32 features of showing ``items`` ``(n, k)`` to sessions ``rows``."""
        c = self.core
        n, k = items.shape
        fs = c.item_features.shape[1]
        out = np.empty((n, k, fs + len(DYNAMIC_ITEM_FEATURES)), dtype=np.float32)
        out[:, :, :fs] = c.item_features[items]
        aff = self.affinity(items, rows)
        budget = c.portraits.budget if rows is None else c.portraits.budget[rows]
        sens = (c.portraits.price_sensitivity if rows is None else c.portraits.price_sensitivity[rows])[:, None]
        ratio = self._log_price[items] - np.log(budget)[:, None]
        over = np.maximum(0.0, np.exp(ratio) - 1.0)
        out[:, :, fs] = aff
        out[:, :, fs + 1] = np.maximum(0.0, A_MIN - aff)
        rep = c.repeat_counts(items, rows)
        out[:, :, fs + 2] = rep
        if rows is None:
            self._step_cache = (items.copy(), aff, rep)
        out[:, :, fs + 3] = c.category_bought(items, rows)
        out[:, :, fs + 4] = ratio
        out[:, :, fs + 5] = over
        # price hurts in proportion to the shopper's sensitivity: give the products directly
        out[:, :, fs + 6] = sens * ratio
        out[:, :, fs + 7] = sens * over
        return out


# =============================================================== network
class BehaviorNet(nn.Module):
    """Shopper encoder + item joint network with click / cart / purchase / leave heads.

    Args:
        user_dim: number of user (portrait + session) features.
        item_dim: number of item features.
        num_channels: channels with their own position-bias exponent.
        hidden: width of every hidden layer.
    """

    def __init__(self, user_dim: int, item_dim: int, num_channels: int, hidden: int = 64) -> None:
        super().__init__()
        h = hidden
        self.user = nn.Sequential(nn.Linear(user_dim, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU())
        self.joint = nn.Sequential(nn.Linear(h + item_dim, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU())
        self.item_head = nn.Linear(h, 3)  # attraction, cart | click, purchase | cart logits
        self.leave = nn.Sequential(nn.Linear(2 * h, h), nn.ReLU(), nn.Linear(h, NUM_LEAVE_LEVELS))
        self.pos_slope = nn.Parameter(torch.zeros(num_channels))
        for name, dim in (("user", user_dim), ("item", item_dim)):
            self.register_buffer(f"{name}_mean", torch.zeros(dim))
            self.register_buffer(f"{name}_std", torch.ones(dim))
        # Platt scaling (a, b) per head, applied to the logit of each probability
        self.register_buffer("calibration", torch.tensor([[1.0, 0.0]] * len(HEADS)))

    def raw(self, user: torch.Tensor, items: torch.Tensor, positions: torch.Tensor, channel: torch.Tensor):
        """Uncalibrated outputs: ``(log P(click), cart logit, purchase logit)`` each ``(n, k)``, leave logits ``(n, 3)``."""
        hu = self.user((user - self.user_mean) / self.user_std)
        n, k, _ = items.shape
        x = torch.cat([hu[:, None, :].expand(n, k, hu.shape[1]), (items - self.item_mean) / self.item_std], dim=2)
        z = self.joint(x)
        logits = self.item_head(z)
        log_exam = -nn.functional.softplus(self.pos_slope)[channel][:, None] * torch.log1p(positions)[None, :]
        log_click = log_exam + nn.functional.logsigmoid(logits[..., 0])
        leave = self.leave(torch.cat([hu, z.mean(dim=1)], dim=1))
        return log_click, logits[..., 1], logits[..., 2], leave

    def forward(self, user, items, positions, channel):
        """Calibrated probabilities ``(click, cart, purchase)`` each ``(n, k)`` and ``leave`` ``(n, 3)``."""
        log_click, cart, buy, leave = self.raw(user, items, positions, channel)
        a, b = self.calibration[:, 0], self.calibration[:, 1]
        click_logit = log_click - torch.log1p(-torch.exp(log_click).clamp(max=1 - 1e-7))
        return (
            torch.sigmoid(a[0] * click_logit + b[0]),
            torch.sigmoid(a[1] * cart + b[1]),
            torch.sigmoid(a[2] * buy + b[2]),
            torch.sigmoid(a[3] * leave + b[3]),
        )

    def inference(self, user, items, positions, channel):
        """:meth:`forward` for inference (no autograd) with fewer temporaries: the same ops on the same
        values, so the same numbers bit for bit; ReLUs in place and the joint input written into one array."""
        f = nn.functional
        (u1, _, u2, _), (j1, _, j2, _) = self.user, self.joint
        hu = f.linear((user - self.user_mean) / self.user_std, u1.weight, u1.bias).relu_()
        hu = f.linear(hu, u2.weight, u2.bias).relu_()
        n, k, _ = items.shape
        h = hu.shape[1]
        x = torch.empty((n, k, h + items.shape[2]), dtype=hu.dtype, device=hu.device)
        x[:, :, :h] = hu[:, None, :]
        x[:, :, h:] = items
        x[:, :, h:].sub_(self.item_mean).div_(self.item_std)
        z = f.linear(f.linear(x, j1.weight, j1.bias).relu_(), j2.weight, j2.bias).relu_()
        logits = self.item_head(z)
        log_exam = -nn.functional.softplus(self.pos_slope)[channel][:, None] * torch.log1p(positions)[None, :]
        log_click = log_exam + nn.functional.logsigmoid(logits[..., 0])
        # the mean of one item is 0 + z exactly (as torch's mean computes it, -0.0 included): ~4x faster
        z_mean = z[:, 0] + 0.0 if k == 1 else z.mean(dim=1)
        leave = self.leave(torch.cat([hu, z_mean], dim=1))
        a, b = self.calibration[:, 0], self.calibration[:, 1]
        click_logit = log_click - torch.log1p(-torch.exp(log_click).clamp(max=1 - 1e-7))
        return (
            torch.sigmoid(a[0] * click_logit + b[0]),
            torch.sigmoid(a[1] * logits[..., 1] + b[1]),
            torch.sigmoid(a[2] * logits[..., 2] + b[2]),
            torch.sigmoid(a[3] * leave + b[3]),
        )


class FoldedNet:
    """The network's weights for ``ecomsim.sim.kernels.dnn_forward``: float32, normalisation and Platt scaling folded in.

    The input normalisation is folded into the first layers and the Platt scaling of
    the cart, purchase and leave heads into their last layers; the compiled forward
    walks one session at a time with no autograd and no dispatch, which is faster than
    torch at small batches. Equal to :meth:`BehaviorNet.forward` within float32 rounding.
    """

    def __init__(self, net: BehaviorNet) -> None:
        sd = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in net.state_dict().items()}
        f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
        cal = sd["calibration"]
        w = sd["user.0.weight"].T
        self.u1 = f32(w / sd["user_std"][:, None])
        self.u1b = f32(sd["user.0.bias"] - (sd["user_mean"] / sd["user_std"]) @ w)
        self.u2, self.u2b = f32(sd["user.2.weight"].T), f32(sd["user.2.bias"])
        h = self.u2.shape[1]
        w = sd["joint.0.weight"].T
        self.j1_user = f32(w[:h])
        self.j1_item = f32(w[h:] / sd["item_std"][:, None])
        self.j1b = f32(sd["joint.0.bias"] - (sd["item_mean"] / sd["item_std"]) @ w[h:])
        self.j2, self.j2b = f32(sd["joint.2.weight"].T), f32(sd["joint.2.bias"])
        scale = np.array([1.0, cal[1, 0], cal[2, 0]])  # attraction stays raw: its calibration acts on P(click)
        shift = np.array([0.0, cal[1, 1], cal[2, 1]])
        self.head = f32(sd["item_head.weight"].T * scale)
        self.headb = f32(sd["item_head.bias"] * scale + shift)
        self.l1, self.l1b = f32(sd["leave.0.weight"].T), f32(sd["leave.0.bias"])
        self.l2 = f32(sd["leave.2.weight"].T * cal[3, 0])
        self.l2b = f32(sd["leave.2.bias"] * cal[3, 0] + cal[3, 1])
        self.slope = np.logaddexp(0.0, sd["pos_slope"])  # softplus
        self.click_a, self.click_b = float(cal[0, 0]), float(cal[0, 1])

        # one flat float32 buffer plus (offset, rows, cols) per array, in the order kernels._forward_row reads
        parts = [self.u1, self.u1b, self.u2, self.u2b, self.j1_user, self.j1_item, self.j1b, self.j2, self.j2b,
                 self.head, self.headb, self.l1, self.l1b, self.l2, self.l2b]
        self.wmeta = np.zeros((len(parts), 3), dtype=np.int64)
        offset = 0
        for e, a in enumerate(parts):
            self.wmeta[e] = (offset, a.shape[0] if a.ndim == 2 else 0, a.shape[-1])
            offset += a.size
        self.wflat = np.concatenate([a.ravel() for a in parts]).astype(np.float32)
        self.weights = (self.wflat, self.wmeta, self.slope, self.click_a, self.click_b)

    def __call__(self, user: np.ndarray, items: np.ndarray, positions: np.ndarray, channel: np.ndarray):
        """``(click, cart, purchase)`` ``(n, k)`` and ``leave`` ``(n, 3)`` float64 from float32 features."""
        return self.run(np.ascontiguousarray(user, dtype=np.float32), np.ascontiguousarray(items, dtype=np.float32),
                        np.asarray(positions, dtype=np.float64), np.asarray(channel, dtype=np.int64))

    def run(self, user: np.ndarray, items: np.ndarray, positions: np.ndarray, channel: np.ndarray):
        """:meth:`__call__` on arrays already of the kernel's types (C-contiguous float32 features)."""
        n, k = items.shape[:2]
        click, cart, buy = np.empty((3, n, k))
        leave = np.empty((n, NUM_LEAVE_LEVELS))
        kernels.dnn_forward(user, items, positions, channel, *self.weights, click, cart, buy, leave)
        return click, cart, buy, leave


# ================================================================= model
class BehaviorModel(ShopperModel):
    """Shoppers driven by a :class:`BehaviorNet` (one batched forward per core step).

    Args:
        net: the trained network (put in ``eval()`` here).
        schema: the feature schema the network was trained with (``user``, ``item``,
            ``catalog_item`` name lists); checked against the core at :meth:`bind`.
        device: ``"cpu"`` or a torch device for the torch forward.
    """

    name = "dnn"

    def __init__(self, net: BehaviorNet, schema: dict[str, list[str]], device: str = "cpu") -> None:
        self.device = torch.device(device)
        net.eval()
        # the CPU net may be shared between models (inference only); other devices get a copy
        self.net = net if self.device.type == "cpu" else copy.deepcopy(net).to(self.device)
        self.schema = schema
        self._folded = FoldedNet(net) if self.device.type == "cpu" else None

    def bind(self, core: "SimulationCore") -> None:
        super().bind(core)
        self.tracker = SessionTracker(core)
        self._consts = np.array([len(SEGMENTS), len(CHANNELS), core.n_popular, core.n_personal,
                                 core.catalog.num_items, core._reward_kind, core.config.max_steps], dtype=np.int64)
        self.fused_step = self._fused_step
        for key, got in (("item", self.tracker.item_names), ("user", self.tracker.user_names)):
            want = self.schema[key]
            if list(got) != list(want):
                diff = [(i, w, g) for i, (w, g) in enumerate(zip(want, got)) if w != g][:3]
                raise ValueError(
                    f"behaviour model feature schema mismatch for {key} features: the weights expect {len(want)} "
                    f"features {want[:12]}..., the catalog/core gives {len(got)}; first differences "
                    f"(index, expected, got): {diff}. A catalog must have the same category names and "
                    "embedding size as the training catalog."
                )

    def reset_sessions(self, idx: np.ndarray) -> None:
        self.tracker.reset(idx)

    def predict(self, user: np.ndarray, items: np.ndarray, positions: np.ndarray, channel: np.ndarray):
        """Probabilities from feature arrays: ``(click, cart, purchase)`` ``(n, k)`` and leave ``(n, 3)``."""
        n, k = items.shape[:2]
        if self._folded is not None and n * k <= KERNEL_MAX_ROWS:
            return self._folded(user, items, positions, channel)
        with torch.inference_mode():
            t = lambda a, dt=torch.float32: torch.as_tensor(a, dtype=dt, device=self.device)  # noqa: E731
            out = self.net.inference(t(user), t(items), t(positions), t(channel, torch.int64))
            return tuple(o.double().cpu().numpy() for o in out)

    def features(self, items: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """User ``(n, U)`` and item ``(n, k, I)`` float32 features of showing ``items`` to sessions ``rows``.

        The values of ``tracker.user_features`` / ``tracker.item_features``, from ``kernels.dnn_features``.
        """
        tr, c = self.tracker, self.core
        pt = c.portraits
        rows = c._rows if rows is None else np.asarray(rows, dtype=np.int64)
        n, k = items.shape
        user = np.empty((n, len(tr.user_names)), dtype=np.float32)
        item = np.empty((n, k, len(tr.item_names)), dtype=np.float32)
        kernels.dnn_features(
            rows, np.ascontiguousarray(items, dtype=np.int64), pt.segment, pt.channel, pt.budget,
            pt.price_sensitivity, c._ints, c.last_clicked, c.bought, c.recent, tr.state, tr.interest,
            c.item_features, c._emb64, tr._log_price, c._category, len(SEGMENTS), len(CHANNELS), A_MIN,
            LOG_BUDGET_CENTER, user, item,
        )
        return user, item

    def reaction(self, items: np.ndarray, positions: np.ndarray, rows: np.ndarray | None = None) -> Reaction:
        user, item = self.features(items, rows)
        ch = self.core.portraits.channel if rows is None else self.core.portraits.channel[rows]
        click, cart, buy, leave = self.predict(user, item, np.asarray(positions, dtype=np.float32), ch)
        return Reaction(click=click, cart=cart, purchase=buy, leave=leave)

    def update(self, items, shown, clicked, carted, purchased) -> None:
        tr = self.tracker
        flags = np.stack([shown, clicked])
        kernels.dnn_update(np.ascontiguousarray(items, dtype=np.int64), flags, self.core.recent, tr._quality,
                           self.core._emb64, tr.interest, tr.state, A_MIN, DECAY, DRIFT)

    def _fused_step(self, slots, items, flags, counts, money, ends, skip) -> np.ndarray:
        """:attr:`ShopperModel.fused_step`: ``kernels.dnn_step`` (small batches on CPU), else ``kernels.dnn_pre``,
        the forward of :meth:`predict` and ``kernels.dnn_post`` (the same row functions around the forward)."""
        c, tr = self.core, self.tracker
        pt, st = c.portraits, c.streams
        obs = np.empty((c.num_envs, c.obs_dim), dtype=np.float32)
        if self._folded is not None and items.size <= KERNEL_MAX_ROWS:
            kernels.dnn_step(
                skip, slots, c.candidates, st.base, st.counter, c._u, pt.segment, pt.channel, pt.interest, pt.budget,
                pt.price_sensitivity, c._ints, c.revenue, c.last_clicked, c.clicked_emb, c.bought, c.recent, c.pool,
                tr.state, tr.interest, c.item_features, c._emb64, tr._log_price, c.catalog.price, tr._quality,
                c._category, c._popular_items, c._popular_cdf, c._popular_low, c._popular_exact, c._mark,
                *self._folded.weights, c._positions, self._consts, items, flags, counts, money, ends, obs,
            )
            return obs
        n, k = items.shape
        user = np.empty((n, len(tr.user_names)), dtype=np.float32)
        itemf = np.empty((n, k, len(tr.item_names)), dtype=np.float32)
        kernels.dnn_pre(skip, slots, c.candidates, pt.segment, pt.channel, pt.budget, pt.price_sensitivity, c._ints,
                        c.last_clicked, c.bought, c.recent, tr.state, tr.interest, c.item_features, c._emb64,
                        tr._log_price, c._category, self._consts, items, flags, user, itemf)
        click, cart, buy, leave = self.predict(user, itemf, c._positions.astype(np.float32), pt.channel)
        kernels.dnn_post(
            skip, st.base, st.counter, c._u, click, cart, buy, leave, pt.segment, pt.channel, pt.interest, pt.budget,
            pt.price_sensitivity, c._ints, c.revenue, c.last_clicked, c.clicked_emb, c.bought, c.recent,
            c.candidates, c.pool, tr.state, tr.interest, c.item_features, c._emb64, tr._log_price, c.catalog.price,
            tr._quality, c._category, c._popular_items, c._popular_cdf, c._popular_low, c._popular_exact, c._mark,
            self._consts, items, flags, counts, money, ends, obs,
        )
        return obs


# ============================================================ weights i/o
def save_weights(net: BehaviorNet, weights_path: str | Path, card: dict[str, Any]) -> dict[str, Any]:
    """Write ``state_dict`` to ``weights_path`` and the card (with sha256) next to it as ``.json``."""
    weights_path = Path(weights_path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    data = buf.getvalue()
    weights_path.write_bytes(data)
    card = dict(card, format=WEIGHTS_FORMAT, sha256=hashlib.sha256(data).hexdigest())
    weights_path.with_suffix(".json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return card


def load_net(weights_path: str | Path) -> tuple[BehaviorNet, dict[str, Any]]:
    """Load a network and its card, checking the format, checksum and architecture."""
    weights_path = Path(weights_path)
    card_path = weights_path.with_suffix(".json")
    for p in (weights_path, card_path):
        if not p.is_file():
            raise FileNotFoundError(
                f"behaviour model file {str(p)!r} does not exist; build it with `python scripts/train_behavior.py`"
            )
    card = read_card(card_path, WEIGHTS_FORMAT, "behaviour model")
    schema = card.get("feature_schema", {})
    if schema.get("version") != FEATURE_VERSION:
        raise ValueError(
            f"behaviour model card {str(card_path)!r} has feature schema version {schema.get('version')!r}, "
            f"expected {FEATURE_VERSION!r}; retrain with `python scripts/train_behavior.py`"
        )
    data = weights_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != card.get("sha256"):
        raise ValueError(
            f"behaviour model weights {str(weights_path)!r} have sha256 {digest}, but the card says "
            f"{card.get('sha256')}; the file is corrupt or does not belong to this card"
        )
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    net = BehaviorNet(len(schema["user"]), len(schema["item"]), len(CHANNELS), int(card["hidden"]))
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"behaviour model weights {str(weights_path)!r} do not fit the card's architecture: {exc}") from exc
    return net, card


def shipped_weights_path() -> Path:
    return Path(str(resources.files("ecomsim") / "assets" / "behavior.pt"))


_CACHE: dict[tuple, tuple[BehaviorNet, dict[str, Any]]] = {}


def load_behavior_model(device: str = "cpu", path: str | Path | None = None) -> BehaviorModel:
    """The shipped DNN shopper model (or the weights at ``path``) on ``device``.

    Verified networks are cached by file identity (path, size, mtime), so building many
    envs reads and hashes the weights once; each model gets its own session state.
    """
    path = Path(path or shipped_weights_path())
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns, path.with_suffix(".json").stat().st_mtime_ns)
    except FileNotFoundError:
        key = None
    if key is None or key not in _CACHE:
        net, card = load_net(path)
        if key is not None:
            _CACHE[key] = (net, card)
    else:
        net, card = _CACHE[key]
    return BehaviorModel(net, card["feature_schema"], device=device)
