"""Options of ``ecomsim/Retention-v0`` (:class:`RetentionConfig`) and its action encoding.

An action is one integer ``a`` in ``[0, len(offers) * len(message_plans) * len(strategies))``::

    a = (offer_index * len(message_plans) + plan_index) * len(strategies) + strategy_index

(:meth:`RetentionConfig.encode` / :meth:`RetentionConfig.decode`). Defaults: offers
none / 5% / 10% / 20% off (``ecomsim.lifecycle.params.COUPONS``), message plans none /
one message 14 days after the visit / two messages on days 7 and 30, strategies
``popularity`` / ``relevance`` / ``price_fit`` / ``margin``
(``ecomsim.lifecycle.strategies``): 48 actions.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from ecomsim.config import USER_MODELS
from ecomsim.errors import check_choice, check_range, suggest
from ecomsim.lifecycle.params import COUPONS, MESSAGE_KINDS, LifecycleParams
from ecomsim.lifecycle.return_model import RETURN_BINS
from ecomsim.lifecycle.returns import MAX_MESSAGES
from ecomsim.lifecycle.strategies import STRATEGY_NAMES

#: the store layer's default gross margin (``ecomsim.store.config.StoreConfig.margin``): one rate for every item
DEFAULT_MARGIN = 0.30
#: sources of the observation's churn risk
CHURN_MODELS = ("learned", "reference")


@dataclass(frozen=True)
class RetentionConfig:
    """Options of ``ecomsim/Retention-v0`` (all JSON-friendly).

    Attributes:
        horizon_days: days from the customer's first purchase (day 0) to the end of the episode, >= 1.
        margin: gross margin share of the list price of every item, in (0, 1): unit cost is
            ``(1 - margin) * price``.
        offers: coupon discounts the action chooses from, each in [0, 1) (0 = no coupon), distinct.
        message_plans: each plan is the days after the visit (>= 1, at most ``MAX_MESSAGES``) on which a
            message of the customer's preferred channel kind still subscribed goes out; ``()`` = none.
        strategies: recommendation strategies of the visit's session, names in ``STRATEGY_NAMES``.
        message_cost: cost per delivered message per kind (push, e-mail, social), currency units, >= 0;
            ``None`` keeps ``LifecycleParams.message_cost``.
        churn_days: window of the churn risk in the observation: P(no visit in the next ``churn_days`` days),
            at most the return model's last bin (365) when ``churn_model="learned"``.
        churn_model: where the observation's churn risk comes from: ``"learned"`` (the return-time model,
            ``ecomsim.lifecycle.return_model``: what a shop could forecast from the history) or
            ``"reference"`` (the reference lifecycle's Bayes-optimal risk from the hidden state).
        return_model: ``"default"`` (the shipped return-time model) or a path to one written by
            ``scripts/train_return_model.py``; read when ``churn_model="learned"``.
        user_model: the visit sessions' shoppers, ``"dnn"`` (learned) or ``"reference"``.
        catalog: the sessions' catalog (``EnvConfig.catalog``); ``max_steps``: session length cap.
    """

    horizon_days: int = 365
    margin: float = DEFAULT_MARGIN
    offers: tuple[float, ...] = COUPONS
    message_plans: tuple[tuple[int, ...], ...] = ((), (14,), (7, 30))
    strategies: tuple[str, ...] = STRATEGY_NAMES
    message_cost: tuple[float, ...] | None = None
    churn_days: int = 30
    churn_model: str = "learned"
    return_model: str = "default"
    user_model: str = "dnn"
    catalog: str = "default"
    max_steps: int = 50
    params: LifecycleParams = field(default_factory=LifecycleParams, compare=False)

    def __post_init__(self) -> None:
        check_range("horizon_days", self.horizon_days, 1, None, integer=True)
        if not (isinstance(self.margin, (int, float)) and not isinstance(self.margin, bool)
                and 0.0 < self.margin < 1.0):
            raise ValueError(f"margin must be a number in (0, 1) (unit cost = (1 - margin) price), got {self.margin!r}")
        offers = tuple(self.offers)
        if not offers:
            raise ValueError("offers must hold at least one discount (0 = no coupon), got ()")
        for v in offers:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0.0 <= v < 1.0):
                raise ValueError(f"offers must be discounts in [0, 1), got {v!r} in {offers!r}")
        if len(set(offers)) != len(offers):
            raise ValueError(f"offers must be distinct, got {offers!r}")
        plans = tuple(tuple(p) for p in self.message_plans)
        if not plans:
            raise ValueError("message_plans must hold at least one plan (() = no message), got ()")
        for plan in plans:
            if len(plan) > MAX_MESSAGES:
                raise ValueError(f"message_plans: a plan holds at most {MAX_MESSAGES} messages, got {plan!r}")
            for d in plan:
                if isinstance(d, bool) or not isinstance(d, int) or d < 1:
                    raise ValueError(f"message_plans must hold days after the visit (integers >= 1), got {d!r} "
                                     f"in {plan!r}")
        strategies = tuple(self.strategies)
        if not strategies:
            raise ValueError(f"strategies must name at least one of {list(STRATEGY_NAMES)}, got ()")
        for name in strategies:
            check_choice("strategies", name, STRATEGY_NAMES)
        if len(set(strategies)) != len(strategies):
            raise ValueError(f"strategies must be distinct, got {strategies!r}")
        params = self.params
        if self.message_cost is not None:
            cost = tuple(self.message_cost)
            if len(cost) != len(MESSAGE_KINDS):
                raise ValueError(f"message_cost must have one cost per message kind {list(MESSAGE_KINDS)}, got {cost!r}")
            for v in cost:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                    raise ValueError(f"message_cost must be finite costs >= 0 (currency units), got {v!r} in {cost!r}")
            params = dataclasses.replace(params, message_cost=tuple(float(v) for v in cost))
        check_range("churn_days", self.churn_days, 1, None, integer=True)
        check_choice("churn_model", self.churn_model, CHURN_MODELS)
        if self.churn_model == "learned" and self.churn_days > RETURN_BINS[-1]:
            raise ValueError(f"churn_days must be <= {RETURN_BINS[-1]} (the return model's last bin) with "
                             f"churn_model='learned', got {self.churn_days}")
        if not isinstance(self.return_model, (str, os.PathLike)) or not str(self.return_model):
            raise ValueError(f"return_model must be 'default' or a path to a return model's weights, "
                             f"got {self.return_model!r}")
        check_choice("user_model", self.user_model, USER_MODELS)
        check_range("max_steps", self.max_steps, 1, None, integer=True)
        object.__setattr__(self, "return_model", str(self.return_model))
        object.__setattr__(self, "offers", tuple(float(v) for v in offers))
        object.__setattr__(self, "message_plans", plans)
        object.__setattr__(self, "strategies", strategies)
        object.__setattr__(self, "params", params)

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> "RetentionConfig":
        """A config from keyword options; an unknown key is an error with a suggestion."""
        names = [f.name for f in dataclasses.fields(cls)]
        for key in kwargs:
            if key not in names:
                raise TypeError(f"unknown Retention-v0 option {key!r}; valid: {names}.{suggest(key, names)}")
        return cls(**kwargs)

    @property
    def num_actions(self) -> int:
        return len(self.offers) * len(self.message_plans) * len(self.strategies)

    def encode(self, offer: int, plan: int, strategy: int) -> int:
        """The action of ``offers[offer]``, ``message_plans[plan]`` and ``strategies[strategy]`` (indexes)."""
        for name, v, n in (("offer", offer, len(self.offers)), ("plan", plan, len(self.message_plans)),
                           ("strategy", strategy, len(self.strategies))):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < n:
                raise ValueError(f"{name} must be an index in [0, {n - 1}], got {v!r}")
        return (offer * len(self.message_plans) + plan) * len(self.strategies) + strategy

    def decode(self, action: int) -> tuple[int, int, int]:
        """``(offer, plan, strategy)`` indexes of ``action`` (checked by the env before)."""
        rest, strategy = divmod(int(action), len(self.strategies))
        offer, plan = divmod(rest, len(self.message_plans))
        return offer, plan, strategy
