"""The behaviour network's outputs with one position per row (explanations, private training).

:meth:`BehaviorNet.raw` takes one ``positions`` vector ``(k,)`` shared by the whole
batch, which is what the simulator needs (slot ``j`` is position ``j``). Two users need a
position per row: the explanations, which treat ``log1p(position)`` of each impression
as an input to attribute, and private training, whose per-sample gradients must see the
position-bias exponent as a layer with a batch dimension. Both call :meth:`BehaviorNet.raw`
at the top slot (where the examination term ``-softplus(s_c) * log1p(0)`` is zero) and
add the examination term of the class docstring, ``log P(examine) = -softplus(s_c) *
log1p(position)``, row by row; the Platt step is :meth:`BehaviorNet.calibrated`, shared with
:meth:`BehaviorNet.forward`. ``tests/shoppers/test_net_rows.py`` ties both to
:meth:`BehaviorNet.forward`. (When ``BehaviorNet`` accepts ``(n, k)`` positions and a
slope per row, this module folds into it.)
"""

from __future__ import annotations

import torch
from torch import nn

from ecomsim.shoppers.network import BehaviorNet


def raw_rows(
    net: BehaviorNet,
    user: torch.Tensor,
    items: torch.Tensor,
    log_positions: torch.Tensor,
    channel: torch.Tensor,
    slope: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Uncalibrated outputs of ``net`` with a position per row.

    Args:
        net: the behaviour network.
        user: ``(n, U)`` user features (raw, the net normalises them).
        items: ``(n, k, I)`` item features.
        log_positions: ``(n, k)`` ``log1p(position)`` of each shown item (top slot 0).
        channel: ``(n,)`` int64 channel index.
        slope: ``(n,)`` raw position-bias exponent of each row before softplus
            (default ``net.pos_slope[channel]``).

    Returns:
        ``log P(click)`` ``(n, k)``, cart logit ``(n, k)``, purchase logit ``(n, k)``,
        leave logits ``(n, 3)``, as :meth:`BehaviorNet.raw`.
    """
    k = items.shape[1]
    log_click, cart, buy, leave = net.raw(user, items, torch.zeros(k, dtype=items.dtype, device=items.device), channel)
    s = net.pos_slope[channel] if slope is None else slope
    return log_click - nn.functional.softplus(s)[:, None] * log_positions, cart, buy, leave


def probabilities(
    net: BehaviorNet, user: torch.Tensor, items: torch.Tensor, log_positions: torch.Tensor, channel: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:meth:`BehaviorNet.forward` with ``(n, k)`` log positions: calibrated probabilities, differentiable."""
    return net.calibrated(*raw_rows(net, user, items, log_positions, channel))
