"""The per-row outputs of the behaviour network equal BehaviorNet.forward / raw (they must stay tied)."""

from __future__ import annotations

import numpy as np
import torch

from ecomsim.data.reference_logs import log_reference_world
from ecomsim.shoppers.weights import load_net, shipped_weights_path
from ecomsim.shoppers.net_rows import probabilities, raw_rows


def test_per_row_positions_equal_forward_at_shared_positions():
    net, _ = load_net(shipped_weights_path())
    s = log_reference_world(60, seed=3, slate_size=5).steps[5]
    user, items = torch.from_numpy(s.user), torch.from_numpy(s.items)
    channel = torch.from_numpy(s.channel.astype(np.int64))
    for positions in (torch.arange(5.0), torch.tensor([0.0, 3.0, 7.0, 1.0, 12.0])):
        lp = torch.log1p(positions).expand(len(s), 5)
        with torch.no_grad():
            for a, b in zip(net(user, items, positions, channel), probabilities(net, user, items, lp, channel)):
                assert torch.equal(a, b)
            for a, b in zip(net.raw(user, items, positions, channel), raw_rows(net, user, items, lp, channel)):
                assert torch.equal(a, b)


def test_per_row_positions_differ_per_row():
    net, _ = load_net(shipped_weights_path())
    s = log_reference_world(20, seed=4).steps[1]
    user, items = torch.from_numpy(s.user[:2]), torch.from_numpy(s.items[:2])
    channel = torch.from_numpy(s.channel[:2].astype(np.int64))
    lp = torch.log1p(torch.tensor([[0.0], [4.0]]))
    with torch.no_grad():
        click = probabilities(net, user, items, lp, channel)[0]
        for r, pos in ((0, 0.0), (1, 4.0)):
            ref = net(user[r : r + 1], items[r : r + 1], torch.tensor([pos]), channel[r : r + 1])[0]
            assert torch.allclose(click[r], ref[0], atol=1e-6, rtol=0)  # another batch size: other float rounding
