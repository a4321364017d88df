"""The behaviour model's network: :class:`BehaviorNet` (torch, trained) and :class:`FoldedNet` (its weights
for the compiled per-session forward of ``ecomsim.sim.kernels``).

:class:`BehaviorNet`: a shopper encoder (portrait + session -> vector), joined with each
item's features, heads for attraction, cart | click and purchase | cart; a leave head on
the shopper vector and the mean of the slate's item vectors (3 outcome levels); and a
per-channel power-law position bias ``P(examine slot k) = (1 + k) ** -softplus(s_c)`` as
in position-based click models, so it extrapolates to any slot. Platt scaling per head
is stored with the weights. Its inputs are the features of
``ecomsim.shoppers.behavior.SessionTracker``; it is trained by ``ecomsim.shoppers.training``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ecomsim.shoppers.base import NUM_LEAVE_LEVELS
from ecomsim.sim import kernels

HEADS = ("click", "cart", "purchase", "leave")
NO_MEMBER = np.zeros(0, dtype=np.int64)  # ``member`` of the kernels: empty, network 0 for every row


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
        return self.calibrated(*self.raw(user, items, positions, channel))

    def calibrated(self, log_click, cart, buy, leave):
        """Platt scaling of :meth:`raw`'s outputs: ``(click, cart | click, purchase | cart)`` ``(n, k)``, leave ``(n, 3)``."""
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

    ``weights`` holds ``K`` networks stacked (one row each of ``wflat``, ``slope``, ``click_a``,
    ``click_b``; ``K = 1`` here, more from :meth:`stack`): the kernels use network 0 unless told
    each row's network (an ensemble's per-session members).
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
        self.weights = (self.wflat[None, :], self.wmeta, self.slope[None, :], np.array([self.click_a]),
                        np.array([self.click_b]))

    @staticmethod
    def stack(folded: list["FoldedNet"]) -> tuple:
        """The ``weights`` bundle of several folded networks of one architecture, network ``j`` in row ``j``."""
        if len({f.wflat.shape for f in folded}) != 1 or any(not np.array_equal(f.wmeta, folded[0].wmeta) for f in folded):
            raise ValueError("stacked networks must share one architecture (hidden width and feature counts)")
        return (np.stack([f.wflat for f in folded]), folded[0].wmeta, np.stack([f.slope for f in folded]),
                np.array([f.click_a for f in folded]), np.array([f.click_b for f in folded]))

    def __call__(self, user: np.ndarray, items: np.ndarray, positions: np.ndarray, channel: np.ndarray):
        """``(click, cart, purchase)`` ``(n, k)`` and ``leave`` ``(n, 3)`` float64 from float32 features."""
        return self.run(np.ascontiguousarray(user, dtype=np.float32), np.ascontiguousarray(items, dtype=np.float32),
                        np.asarray(positions, dtype=np.float64), np.asarray(channel, dtype=np.int64))

    def run(self, user: np.ndarray, items: np.ndarray, positions: np.ndarray, channel: np.ndarray,
            weights: tuple | None = None, member: np.ndarray = NO_MEMBER):
        """:meth:`__call__` on arrays already of the kernel's types (C-contiguous float32 features); ``weights``
        (default this network's) and ``member`` ``(n,)`` int64, each row's network in a stacked bundle."""
        n, k = items.shape[:2]
        click, cart, buy = np.empty((3, n, k))
        leave = np.empty((n, NUM_LEAVE_LEVELS))
        kernels.dnn_forward(user, items, positions, channel, self.weights if weights is None else weights, member,
                            (click, cart, buy, leave))
        return click, cart, buy, leave
