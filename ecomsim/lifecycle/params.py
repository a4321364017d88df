r"""The reference world's lifecycle equations: customers between visits.

The session equations (``ecomsim.shoppers.reference``) say what a shopper does
inside one visit; these say when she comes back, on which channel, in what mood,
and when she is gone for good. Time ``t`` is in days. Customer ``n`` is a row of
:class:`ecomsim.lifecycle.model.Customers`.

**Who the customer is** (drawn once, at her first purchase, ``ecomsim.lifecycle.entry``):
the portrait of a shopper whose first visit bought (segment, interest ``u``, base
budget ``B``, price sensitivity, base patience ``P``: the population's draw, with
the first visit's channel multipliers divided out), channel preferences ``pi_n ~
Dirichlet(channel_concentration * (0.55, 0.30, 0.15) + 1 on the first visit's
channel)`` (the traffic mix of CALIBRATION.md, updated by what she was seen to use),
a visit rate ``lambda_n = visit_rate * G_n`` and a churn hazard ``h_n = churn_rate *
H_n`` (``H_n`` the churn propensity) with ``G_n ~ Gamma(visit_shape, 1 / visit_shape)``
and ``H_n ~ Gamma(churn_shape, 1 / churn_shape)`` (mean 1: heterogeneity as in the
Pareto/NBD and BG/NBD models). Her first visit is applied as any visit (below),
from ``L = 0`` and full needs.

**State between visits**: interest ``u``; remaining need ``nu_c`` in [0, 1] per
category (1 = wants it); loyalty ``L`` in [-1, 1] (satisfaction; 0 is neutral);
annoyance ``A >= 0`` from messages; the carried cart; a pending coupon; per message kind an
unsubscribed flag; alive or churned. Category preferences ``phi_nc =
softmax_c(pref_sharpness * <u, centroid_c>)`` (centroid: the catalog category's mean
item direction) weigh the needs: ``nubar = sum_c phi_nc nu_c``.

**Drift over a gap of** ``D`` **days** (between two visits)::

    u   <- normalise(u + interest_drift * sqrt(D) * z),   z ~ N(0, I)
    nu_c <- 1 - (1 - nu_c) * exp(-D / need_regrowth_days)     (replenishment)
    L   <- L * exp(-D / loyalty_memory_days)
    A   <- A * exp(-D / annoyance_memory_days) + (each message delivered in the gap, decayed likewise)

**A visit** happens on channel ``c ~ pi_n`` (a message's channel on the day it is
answered, see below). The visit's session gets (``ecomsim.lifecycle.visits``): the
portrait with budget ``B * CHANNEL_BUDGET[c]``, patience ``P * CHANNEL_PATIENCE[c]``,
interest ``u``, the pending coupon, the carried cart, and::

    intent_offset = intent_base + intent_need * (nubar - 1) + intent_loyalty * L

**After the visit** (outcome from the :class:`~ecomsim.lifecycle.visits.VisitSimulator`)::

    nu_c <- 0 for every category bought                   (the need is met)
    e     = loyalty_buy * [purchased]
            + loyalty_relevance * (relevant_shown / impressions - relevance_ref)
            - loyalty_disappointment * disappointments     (the visit's experience)
    L    <- L + (1 - L) max(e, 0) - (1 + L) max(-e, 0)

(loyalty stays in [-1, 1]: a good visit moves it the share ``e`` of the way to 1,
a bad one the share ``-e`` of the way to -1, ``e`` clipped to [-1, 1] in this step,
so its effects saturate instead of feeding on themselves);

the coupon is spent if something was bought (its cost is the discount on the
order); the cart is the outcome's (carried items expire ``cart_days`` after the
cart last changed).

**Return time.** From the day after the visit, day ``j`` (days since the visit), a
visit happens with probability ``1 - exp(-lam_j)`` and the customer churns (never
returns) with probability ``1 - exp(-haz_j)``, churn checked first::

    lam_j = lambda_n * exp(return_need * (nubar_j - 1) + return_loyalty * L_j + return_experience * e
                           + return_coupon * d * [coupon valid on day j] + return_cart * [cart kept on day j])
                     * (1 + revisit_boost * exp(-(j - 1) / revisit_days))
            + sum over messages delivered on day j of message_response[kind]
    haz_j = h_n * exp(-churn_loyalty * L_j + churn_annoyance * A_j)

and after every purchase (the trial included) the customer leaves for good with
probability::

    1 - exp(-churn_after_purchase * H_n * exp(-churn_loyalty * L + churn_annoyance * A))

(the need that brought her is met and some customers are one-off buyers: BG/NBD's
drop-out after a transaction; ``H_n`` is the same churn propensity as in ``haz``),
with ``nubar_j``, ``L_j``, ``A_j`` the drifted values on day ``j`` (preferences
``phi`` kept from the visit). ``revisit_boost`` is the short-lived return of a
shopper who is still deciding (browse on the phone, buy on the web days later).

**Messages** (between visits, planned at a visit: day and kind, push on the app,
e-mail on the web, a social post): a message of kind ``k`` delivered on day ``j``
adds ``message_response[k]`` to ``lam_j`` (a visit that day is on channel ``k``
with probability ``message_response[k] / lam_j``), costs ``message_cost[k]``, adds
1 to ``A`` and unsubscribes the customer from kind ``k`` with probability ``1 -
exp(-message_unsubscribe[k] * (1 + A))`` (``A`` just before it): messages to an
unsubscribed kind are not delivered (and cost nothing). Messages planned after the
next visit are cancelled.

**Coupons** (``d`` in ``COUPONS``, offered at the start of a visit): the discount
applies to that visit's order, or, if it buys nothing, to the next order within
``coupon_days``; a valid coupon raises ``lam`` and enters each visit's session as a
lower price (``ecomsim.lifecycle.visits``); it is spent by the order it discounts.

**Churned customers** never visit again; messages planned for them still go out
(the shop cannot tell) and cost, with no effect.

**Calibration.** ``visit_rate``, ``visit_shape``, ``churn_rate``, ``churn_shape``,
``churn_after_purchase``, ``intent_need``, ``need_regrowth_days``, ``return_need``,
``revisit_boost`` and ``revisit_days`` are fitted to the CDNOW sample's calibration
weeks 1-39 (``python scripts/calibrate_lifecycle.py``; method in its docstring,
figures from ``python scripts/lifecycle_report.py``); the others are set by
assumption (no public data pins coupon and message responses) and say so below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

COUPONS = (0.0, 0.05, 0.10, 0.20)
MESSAGE_KINDS = ("push", "email", "social")  # channel of each kind: app, web, social (same order as CHANNELS)


@dataclass(frozen=True)
class LifecycleParams:
    """Parameters of the lifecycle equations (names as in the module docstring; days, currency units).

    ============================= ===================================================================
    parameter                     meaning, [source]
    ============================= ===================================================================
    ``visit_rate``                mean daily visit hazard ``lambda`` [CDNOW fit]
    ``visit_shape``               Gamma shape of the visit-rate heterogeneity [CDNOW fit]
    ``churn_rate``                mean daily churn hazard ``h`` [CDNOW fit]
    ``churn_shape``               Gamma shape of the churn-propensity heterogeneity [CDNOW fit]
    ``churn_after_purchase``      churn propensity after a purchase [CDNOW fit]
    ``channel_concentration``     Dirichlet concentration of channel preferences [assumption]
    ``pref_sharpness``            sharpness of category preferences ``phi`` [assumption]
    ``intent_base``               intent offset of a returning customer at full need [assumption: ~2x anonymous conversion]
    ``intent_need``               intent lost when the preferred categories' needs are met [CDNOW fit]
    ``intent_loyalty``            intent per unit of loyalty [assumption]
    ``need_regrowth_days``        time constant of need regrowth after a purchase [CDNOW fit]
    ``interest_drift``            interest random walk per sqrt(day) [assumption]
    ``loyalty_buy``               loyalty from a visit with a purchase [assumption]
    ``loyalty_relevance``         loyalty per share of relevant items above ``relevance_ref`` [assumption]
    ``relevance_ref``             share of relevant items that leaves loyalty unchanged [reference world, popularity]
    ``loyalty_disappointment``    loyalty lost per disappointing click [assumption]
    ``loyalty_memory_days``       time constant of loyalty decay [assumption]
    ``return_need``               visit hazard lost when needs are met [CDNOW fit]
    ``return_loyalty``            visit hazard per unit of loyalty [assumption]
    ``return_experience``         visit hazard per unit of the last visit's experience [assumption]
    ``return_coupon``             visit hazard per unit discount of a valid coupon [assumption]
    ``return_cart``               visit hazard of a kept cart [assumption]
    ``revisit_boost``             extra visit hazard right after a visit [CDNOW fit]
    ``revisit_days``              time constant of that boost [CDNOW fit]
    ``churn_loyalty``             churn hazard reduction per unit of loyalty [assumption]
    ``churn_annoyance``           churn hazard increase per unit of annoyance [assumption]
    ``annoyance_memory_days``     time constant of annoyance decay [assumption]
    ``message_response``          visit hazard added on a message's day, per kind push/e-mail/social [assumption]
    ``message_cost``              cost per delivered message, per kind [assumption]
    ``message_unsubscribe``       unsubscribe hazard per message, per kind [assumption]
    ``coupon_days``               coupon validity [assumption]
    ``cart_days``                 carried cart lifetime [assumption]
    ============================= ===================================================================
    """

    visit_rate: float = 0.04037
    visit_shape: float = 0.7996
    churn_rate: float = 0.0009207
    churn_shape: float = 0.6921
    churn_after_purchase: float = 0.3533
    channel_concentration: float = 3.0
    pref_sharpness: float = 4.0
    intent_base: float = 1.0
    intent_need: float = 0.1927
    intent_loyalty: float = 0.3
    need_regrowth_days: float = 135.6
    interest_drift: float = 0.02
    loyalty_buy: float = 0.3
    loyalty_relevance: float = 0.5
    relevance_ref: float = 0.22
    loyalty_disappointment: float = 0.1
    loyalty_memory_days: float = 90.0
    return_need: float = 0.2939
    return_loyalty: float = 0.3
    return_experience: float = 0.2
    return_coupon: float = 5.0
    return_cart: float = 0.3
    revisit_boost: float = 0.1845
    revisit_days: float = 3.137
    churn_loyalty: float = 0.5
    churn_annoyance: float = 0.15
    annoyance_memory_days: float = 30.0
    message_response: tuple[float, float, float] = (0.05, 0.03, 0.01)
    message_cost: tuple[float, float, float] = (0.01, 0.02, 0.05)
    message_unsubscribe: tuple[float, float, float] = (0.01, 0.005, 0.002)
    coupon_days: float = 30.0
    cart_days: float = 30.0

    def __post_init__(self) -> None:
        positive = ("visit_rate", "visit_shape", "churn_shape", "channel_concentration", "need_regrowth_days",
                    "loyalty_memory_days", "revisit_days", "annoyance_memory_days", "coupon_days", "cart_days")
        for f in fields(self):
            value = getattr(self, f.name)
            values = value if isinstance(value, tuple) else (value,)
            if f.name.startswith("message_") and len(values) != len(MESSAGE_KINDS):
                raise ValueError(f"{f.name} must have one value per message kind {list(MESSAGE_KINDS)}, got {value!r}")
            for v in values:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise ValueError(f"{f.name} must be a finite number, got {value!r}")
                if f.name in positive and v <= 0:
                    raise ValueError(f"{f.name} must be > 0, got {value!r}")
                if f.name.startswith("message_") or f.name in ("churn_rate", "churn_after_purchase", "revisit_boost",
                                                                      "interest_drift"):
                    if v < 0:
                        raise ValueError(f"{f.name} must be >= 0, got {value!r}")
