r"""The learned return-time model: when will a customer visit again, from what a shop can see.

The reference lifecycle knows each customer's hidden state (visit rate, churn
propensity, loyalty, needs, annoyance) and so its churn risk is Bayes-optimal
(``Lifecycle.return_probability``). A shop sees only the history: the customer's
portrait, recency / frequency / monetary value, the offers and messages she got,
her cart and her last visit (the observation of ``ecomsim/Retention-v0`` without
its churn column, :data:`RETURN_FEATURES`), plus what it decides now (:data:`DECISION_FEATURES`:
the coupon sent, the messages planned). :class:`ReturnNet` learns the return time
from those, as a **discrete-time hazard** over the day bins :data:`RETURN_BINS`::

    h_k(x) = sigmoid(f_k(x))        P(next visit in bin k | none before it)
    S(d | x) = prod_{bins k ending <= d} (1 - h_k) * (1 - h_j) ** ((d - start_j) / width_j)

(``S(d)``: no visit in the next ``d`` days; inside a bin the hazard is spread evenly
over its days, so ``S`` is exact at the bin edges.) The exported churn risk is
``S(churn_days)`` with no coupon and no message: P(no visit in the next 30 days) as
the shop would forecast it if it did nothing. Training (``ecomsim.lifecycle.return_training``)
maximises the censored likelihood on reference-world lifecycle logs; a row whose
window ends before a visit (the horizon, or a churn the shop cannot see) counts the
bins it fully observed as survived.

Files: ``state_dict`` (``.pt``, tensors only) and a card (``.json`` beside it, format
:data:`RETURN_FORMAT`) holding the bins, the feature names, the training summary and
the weights' sha256; loading checks all of it and names the file in every error. The
shipped model (``ecomsim/assets/return_model.pt``) is built by
``python scripts/train_return_model.py``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ecomsim.cards import (check_file, check_sha256, check_state_dict, load_tensors, read_card, require_keys,
                           save_tensors)
from ecomsim.config import CHANNELS
from ecomsim.lifecycle.params import MESSAGE_KINDS
from ecomsim.shoppers.population import SEGMENTS

RETURN_FORMAT = "ecomsim-return-v1"
#: right edges of the hazard's day bins (the first bin is days 1-7); 30 is an edge: the churn window
RETURN_BINS = (7, 14, 21, 30, 45, 60, 90, 120, 180, 270, 365)
#: the Retention-v0 observation's columns, in order (the last, ``churn_risk``, is this model's output)
OBSERVATION_NAMES = (
    tuple(f"segment_{s}" for s in SEGMENTS) + ("budget", "price_sensitivity", "patience")
    + tuple(f"prefers_{c}" for c in CHANNELS) + tuple(f"last_channel_{c}" for c in CHANNELS)
    + tuple(f"unsubscribed_{k}" for k in MESSAGE_KINDS)
    + ("recency", "frequency", "purchases", "monetary", "offers_made", "last_offer", "pending_coupon", "messages",
       "cart_items", "cart_value", "last_purchased", "last_clicks", "last_length", "days_left", "days_gone",
       "churn_risk"))
RETURN_FEATURES = OBSERVATION_NAMES[:-1]
#: what the shop decides at the visit: the coupon's discount, planned messages / 2, sq(first message day, 14)
DECISION_FEATURES = ("offer", "messages_planned", "first_message_day")
DEFAULT_RETURN_MODEL = "return_model.pt"


def decision_features(offer: np.ndarray, message_day: np.ndarray) -> np.ndarray:
    """``(n, 3)`` :data:`DECISION_FEATURES` from the coupon ``offer`` ``(n,)`` and ``message_day`` ``(n, M)`` (days
    after the visit, 0 = no message)."""
    offer = np.asarray(offer, dtype=np.float64)
    days = np.asarray(message_day, dtype=np.float64).reshape(len(offer), -1)
    planned = (days > 0).sum(axis=1)
    first = np.where(days > 0, days, np.inf).min(axis=1, initial=np.inf)
    some = np.isfinite(first)
    first = np.divide(first, first + 14.0, out=np.zeros_like(first), where=some)
    return np.stack([offer, planned / 2.0, first], axis=1)


class ReturnNet(nn.Module):
    """MLP from the customer's features and the decision to the logits of the bins' hazards.

    Args:
        hidden: width of the two hidden layers.
        inputs: ``len(RETURN_FEATURES) + len(DECISION_FEATURES)``.
        bins: ``len(RETURN_BINS)``.
    """

    def __init__(self, hidden: int = 64, inputs: int = len(RETURN_FEATURES) + len(DECISION_FEATURES),
                 bins: int = len(RETURN_BINS)) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(inputs, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                  nn.Linear(hidden, bins))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, bins)`` hazard logits of ``x`` ``(n, inputs)``."""
        return self.body(x)


def survival(hazard: np.ndarray, days: float, bins: tuple[int, ...] = RETURN_BINS) -> np.ndarray:
    """``(n,)`` ``S(days)``: no visit in the next ``days`` days, from per-bin hazards ``(n, len(bins))``."""
    if not 0 < days <= bins[-1]:
        raise ValueError(f"days must be in (0, {bins[-1]}] (the return model's last bin), got {days!r}")
    log_keep = np.log1p(-np.clip(hazard, 0.0, 1.0 - 1e-12))
    start, total = 0, np.zeros(hazard.shape[0])
    for k, end in enumerate(bins):
        share = min(max(days - start, 0.0), end - start) / (end - start)
        total += share * log_keep[:, k]
        start = end
    return np.exp(total)


def hazard_nll(logits: torch.Tensor, event_bin: torch.Tensor, observed_bins: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of the discrete-time hazard (censoring as in the module docstring).

    Args:
        logits: ``(n, K)`` hazard logits.
        event_bin: ``(n,)`` int64 bin of the next visit, ``-1`` when none was seen in the window.
        observed_bins: ``(n,)`` int64 bins survived: the event's bin index (bins before it), or the number of
            bins that end inside the censoring window.
    """
    k = torch.arange(logits.shape[1], device=logits.device)
    survived = (k[None, :] < observed_bins[:, None]).to(logits.dtype)
    log_keep = nn.functional.logsigmoid(-logits)  # log(1 - h)
    ll = (survived * log_keep).sum(dim=1)
    hit = event_bin >= 0
    ll = ll + torch.where(hit, nn.functional.logsigmoid(logits.gather(1, event_bin.clamp(min=0)[:, None])[:, 0]),
                          torch.zeros_like(ll))
    return -ll.mean()


class ReturnModel:
    """A trained :class:`ReturnNet` with its card: hazards, survival and the churn risk in numpy.

    Args:
        net: the network (eval mode is set here).
        card: its card (``bins``, feature names, training summary).
    """

    def __init__(self, net: ReturnNet, card: dict[str, Any]) -> None:
        self.net = net.eval()
        self.card = card
        self.bins = tuple(int(b) for b in card["bins"])
        # inference in float64 numpy: no torch call per env step, and no dependence on torch's thread count
        layers = [m for m in net.body if isinstance(m, nn.Linear)]
        self._layers = [(m.weight.detach().double().numpy().T.copy(), m.bias.detach().double().numpy().copy())
                        for m in layers]

    def hazard(self, features: np.ndarray, decision: np.ndarray) -> np.ndarray:
        """``(n, K)`` per-bin hazards for customers ``features`` ``(n, len(RETURN_FEATURES))`` and ``decision``
        ``(n, len(DECISION_FEATURES))`` (the network of ``net``, evaluated in float64)."""
        x = np.concatenate([np.asarray(features, dtype=np.float64), np.asarray(decision, dtype=np.float64)], axis=1)
        for i, (w, b) in enumerate(self._layers):
            x = x @ w + b
            if i < len(self._layers) - 1:
                x = x / (1.0 + np.exp(-x))  # SiLU
        return 1.0 / (1.0 + np.exp(-x))

    def churn_risk(self, features: np.ndarray, days: int = 30) -> np.ndarray:
        """``(n,)`` P(no visit in the next ``days`` days) if the shop sends no coupon and no message."""
        n = len(features)
        return survival(self.hazard(features, decision_features(np.zeros(n), np.zeros((n, 0)))), days, self.bins)


def save_return_model(net: ReturnNet, path: str | Path, card: dict[str, Any]) -> dict[str, Any]:
    """Write ``net``'s ``state_dict`` to ``path`` and its card (with format, bins, features and sha256) beside it."""
    return save_tensors(net.state_dict(), path, dict(card, format=RETURN_FORMAT, bins=list(RETURN_BINS),
                                                     features=list(RETURN_FEATURES),
                                                     decision_features=list(DECISION_FEATURES)))


def load_return_model(path: str | Path = "default") -> ReturnModel:
    """The return model at ``path`` (``"default"``: the shipped one), checking its card and weights.

    Every problem names the file: missing, a card of another format or lacking keys, features or bins other
    than this version's, weights whose sha256 differs from the card's, that hold anything but tensors (refused,
    never run) or that do not fit the card's width.
    """
    if str(path) == "default":
        path = Path(str(resources.files("ecomsim") / "assets" / DEFAULT_RETURN_MODEL))
    path = Path(path)
    fix = "; build it with `python scripts/train_return_model.py --out PATH`"
    check_file(path, "return model weights", fix=fix)
    card_path = path.with_suffix(".json")
    check_file(card_path, "return model card", fix=fix)
    card = read_card(card_path, RETURN_FORMAT, "return model", required=("hidden", "bins", "features", "sha256"))
    where = f"return model card {str(card_path)!r}"
    require_keys(card, ("decision_features",), where)
    for key, expected in (("features", RETURN_FEATURES), ("decision_features", DECISION_FEATURES),
                          ("bins", RETURN_BINS)):
        if tuple(card[key]) != tuple(expected):
            raise ValueError(f"{where} has {key} {card[key]!r}, expected {list(expected)!r} (a model of another "
                             f"feature version){fix}")
    hidden = card["hidden"]
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise ValueError(f"{where} has hidden {hidden!r}, expected a positive integer")
    data = path.read_bytes()
    check_sha256(path, card["sha256"], "return model weights", fix.lstrip("; "))
    state = check_state_dict(load_tensors(path, "return model weights", data=data), path, "return model weights")
    net = ReturnNet(hidden)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"return model weights {str(path)!r} do not fit the card (hidden {hidden}): "
                         f"{str(exc).splitlines()[0]}") from None
    return ReturnModel(net, card)
