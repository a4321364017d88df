"""``ecomsim/Retention-v0``: keep a customer coming back, one decision after each of her visits.

## Description
One customer per episode, from her first purchase (day 0, ``ecomsim.lifecycle.entry``:
a fresh shopper whose first visit bought) to ``horizon_days`` (default 365) or churn.
Her life follows the lifecycle equations (``ecomsim.lifecycle.params``) through the
public :class:`~ecomsim.lifecycle.model.Lifecycle` API; each visit is a real session
of the batched core (:class:`~ecomsim.lifecycle.sessions.SessionVisits`, DNN
shoppers by default) with her own portrait, coupon and carried cart.

A step is one decision, taken right after a visit (the first one right after the
trial purchase): the coupon sent now, the messages planned until the next visit and
the recommendation strategy of that next visit. The env then draws the return
(``Lifecycle.gap``: the coupon and the messages raise the visit hazard) and, if she
comes back before the horizon, runs the visit (``Lifecycle.visit``) with the coupon
still valid and the chosen strategy.

## Action Space
``Discrete(len(offers) * len(message_plans) * len(strategies))``, 48 by default
(encoding in ``ecomsim.lifecycle.retention_config``). Offer: a coupon of 0 / 5 / 10 /
20% off, valid ``coupon_days`` (30) from now on her next order, raising her return
hazard while valid (0 keeps a pending coupon). Message plan: none, one message on day
14, two on days 7 and 30, each of the kind of her most preferred channel she has not
unsubscribed from (push for the app, e-mail for the web, social); messages planned
after the next visit are cancelled. Strategy: ``ecomsim.lifecycle.strategies``.

## Observation Space
``Box(0, 1, (32,))`` float32, ``sq(x, s) = x / (x + s)`` squashing counts and money (``P``
the catalog's median price): segment one-hot (4); ``sq(budget, P)``,
``sq(price_sensitivity, 1)``, ``sq(patience, 10)``; channel preferences (3); last visit's
channel one-hot (3); unsubscribed per message kind (3); recency ``sq(days since the last
purchase, 30)``, frequency ``sq(visits, 5)``, ``sq(purchases, 3)``, monetary
``sq(revenue, 3 P)``; offer history ``sq(coupons offered, 3)``, the last offer, the pending
coupon, ``sq(messages delivered, 5)``; cart ``items / CART_SLOTS``, ``sq(cart list value,
2 P)``; last visit purchased, ``sq(clicks, 3)``, ``session length / max_steps``; days left
and days gone as shares of the horizon; churn risk. The churn risk is the reference
lifecycle's Bayes risk ``1 - Lifecycle.return_probability(churn_days)``: P(no visit in the
next ``churn_days`` days) given the customer's full hidden state (need, loyalty, annoyance,
coupon, cart) and no messages, computed right after the visit. It is what a model that
knows the world would forecast, not a learned estimate.

## Rewards
The step's profit, currency units: the visit's gross margin on list prices minus the
coupon's discount and the delivered messages' costs::

    profit = margin * (revenue + discount_cost) - discount_cost - message_cost

(``revenue`` is what the customer paid, ``discount_cost`` what the coupon took off; so
``profit = revenue - (1 - margin) * list revenue``). A step with no visit earns
``-message_cost``.

## Episode End
Terminated when the customer churns (the hazard, or leaving after a purchase) or when no
visit comes before the horizon (days left are in the observation, so the horizon is part
of the state). Never truncated.

## Info
``revenue``, ``discount_cost``, ``message_cost``, ``messages_sent``, ``profit``,
``purchases`` (items bought), ``purchased``, ``visited``, the visit's session figures
(``clicks``, ``impressions``, ``relevant_shown``, ``disappointments``, ``session_length``,
``recovered``), ``channel``, ``day`` (of the visit, or of the episode's end),
``days_to_next_visit`` (the gap, -1 when none), ``churned``, ``churn_risk``, the chosen
``offer``, ``message_plan`` and ``strategy``.

## Randomness
``reset(seed)`` seeds ``np_random``; the customer's stream keys come from it
(``ecomsim.lifecycle.entry``), and every later draw from her streams: same seed and
actions, same episode.

## Vectorisation
No native batched env yet: ``gym.make_vec`` runs copies of this env (``"sync"``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ecomsim.config import CHANNELS, EnvConfig
from ecomsim.lifecycle.entry import draw_entrants
from ecomsim.lifecycle.model import Customers, Lifecycle
from ecomsim.lifecycle.params import MESSAGE_KINDS
from ecomsim.lifecycle.retention_config import RetentionConfig
from ecomsim.lifecycle.returns import NEVER
from ecomsim.lifecycle.sessions import SessionVisits
from ecomsim.lifecycle.strategies import STRATEGY_NAMES, RowStrategies
from ecomsim.lifecycle.visits import CART_SLOTS
from ecomsim.shoppers.population import SEGMENTS, ShopperPopulation

OBS_SIZE = len(SEGMENTS) + 3 + 3 * len(CHANNELS) + 4 + 4 + 2 + 3 + 3
CHURN_RISK_INDEX = OBS_SIZE - 1  # the churn risk is the last feature
SESSION_KEYS = ("clicks", "impressions", "relevant_shown", "disappointments", "session_length", "recovered")


def _sq(x: float, scale: float) -> float:
    return float(x) / (float(x) + scale)


class RetentionEnv(gym.Env):
    """One customer over ``horizon_days`` (see the module docstring).

    Args:
        render_mode: must be ``None``.
        **kwargs: :class:`RetentionConfig` fields.
    """

    metadata = {"render_modes": []}

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode must be None (Retention-v0 has no rendering), got {render_mode!r}")
        self.render_mode = None
        self.config = cfg = RetentionConfig.from_kwargs(kwargs)
        self.strategy = RowStrategies()
        session = EnvConfig(user_model=cfg.user_model, catalog=cfg.catalog, max_steps=cfg.max_steps)
        self.sim = SessionVisits(session, self.strategy)
        self.catalog = self.sim.catalog
        self.lifecycle = Lifecycle(self.catalog, cfg.params)
        self.population = ShopperPopulation(self.catalog)
        self.price_scale = float(np.median(self.catalog.price))
        self._strategy_index = np.array([STRATEGY_NAMES.index(s) for s in cfg.strategies], dtype=np.int64)
        self.action_space = spaces.Discrete(cfg.num_actions)
        self.observation_space = spaces.Box(0.0, 1.0, (OBS_SIZE,), dtype=np.float32)
        self.customer: Customers | None = None

    # ================================================================== api
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.strategy.choice = np.zeros(1, dtype=np.int64)  # the trial visit: an ordinary (popularity) session
        entrants = draw_entrants(self.population, np.zeros(1, dtype=np.int64), self.sim, self.np_random)
        # until = day 0: the return after the trial is drawn by the first step, with its coupon and messages
        self.customer = self.lifecycle.new_customers(entrants, until=0)
        trial = entrants.trial
        self.last = {"channel": int(entrants.context.channel[0]), "purchased": True, "clicks": int(trial.clicks[0]),
                     "session_length": int(trial.session_length[0])}
        self.last_purchase_day = 0
        self.offers_made, self.last_offer, self.messages = 0, 0.0, 0
        self.churn_risk = self._churn_risk()
        info = {"day": 0, "revenue": float(trial.revenue[0]), "attempts": int(entrants.attempts[0]),
                "churn_risk": self.churn_risk}
        return self._observation(), info

    def step(self, action):
        if self.customer is None:
            raise RuntimeError("call reset() before step()")
        cfg, lc, c = self.config, self.lifecycle, self.customer
        a = self._check_action(action)
        offer, plan, strategy = cfg.decode(a)
        rows = np.zeros(1, dtype=np.int64)
        days = cfg.message_plans[plan]
        kinds = np.full((1, len(days)), self._message_kind(), dtype=np.int64)
        gap = lc.gap(c, rows, cfg.horizon_days, coupon=np.array([cfg.offers[offer]]),
                     message_day=np.asarray([days], dtype=np.int64).reshape(1, len(days)), message_kind=kinds)
        if cfg.offers[offer] > 0:
            self.offers_made += 1
        self.last_offer = cfg.offers[offer]
        self.messages += int(gap.messages_sent[0])
        message_cost = float(gap.message_cost[0])
        info: dict[str, Any] = {"offer": cfg.offers[offer], "message_plan": list(days),
                                "strategy": cfg.strategies[strategy], "message_cost": message_cost,
                                "messages_sent": int(gap.messages_sent[0])}
        next_day = int(gap.next_day[0])
        if gap.churned[0] or next_day == NEVER:
            churned = bool(gap.churned[0])
            end = int(c.churn_day[0]) if churned else cfg.horizon_days
            info.update(_no_visit(), day=min(end, cfg.horizon_days), days_to_next_visit=-1, churned=churned,
                        profit=-message_cost, churn_risk=self.churn_risk)
            self.customer = None
            return self._observation_of(c), -message_cost, True, False, info
        gap_days = next_day - int(c.last_day[0])
        self.strategy.choice = self._strategy_index[[strategy]]
        step = lc.visit(c, rows, self.sim, until=next_day)  # until = the visit day: no return drawn here
        out = step.outcome
        revenue, discount = float(out.revenue[0]), float(out.discount_cost[0])
        profit = cfg.margin * (revenue + discount) - discount - message_cost
        if out.purchased[0]:
            self.last_purchase_day = next_day
        self.last = {"channel": int(step.channel[0]), "purchased": bool(out.purchased[0]),
                     "clicks": int(out.clicks[0]), "session_length": int(out.session_length[0])}
        churned = bool(step.churned[0])  # she left after this purchase
        self.churn_risk = 1.0 if churned else self._churn_risk()
        info.update({k: int(getattr(out, k)[0]) for k in SESSION_KEYS})
        info.update(visited=True, revenue=revenue, discount_cost=discount, purchases=int(out.items_bought[0]),
                    purchased=bool(out.purchased[0]), channel=CHANNELS[int(step.channel[0])], day=next_day,
                    days_to_next_visit=gap_days, churned=churned, profit=profit, churn_risk=self.churn_risk)
        obs = self._observation()
        if churned:
            self.customer = None
        return obs, profit, churned, False, info

    # ============================================================== pieces
    def _check_action(self, action) -> int:
        arr = np.asarray(action)
        n = self.action_space.n
        if arr.shape not in ((), (1,)) or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"action must be one integer in [0, {n - 1}] (offer x message plan x strategy), "
                             f"got {action!r}")
        a = int(arr.reshape(-1)[0])
        if not 0 <= a < n:
            raise ValueError(f"action must be in [0, {n - 1}] (offer x message plan x strategy), got {a}")
        return a

    def _message_kind(self) -> int:
        """The kind of the customer's most preferred channel she still hears from (kinds follow ``CHANNELS``)."""
        c = self.customer
        pref = np.where(c.unsubscribed[0], -1.0, c.channel_pref[0])
        return int(np.argmax(pref)) if (pref >= 0).any() else int(np.argmax(c.channel_pref[0]))

    def _churn_risk(self) -> float:
        c = self.customer
        return float(1.0 - self.lifecycle.return_probability(c, np.zeros(1, dtype=np.int64), self.config.churn_days)[0])

    def _observation(self) -> np.ndarray:
        return self._observation_of(self.customer)

    def _observation_of(self, c: Customers) -> np.ndarray:
        cfg, p = self.config, self.price_scale
        day = int(c.last_day[0])
        cart = c.cart[0]
        has = cart >= 0
        cart_value = float(self.catalog.price[cart[has]].sum())
        pending = float(c.coupon[0]) if day <= c.coupon_until[0] else 0.0
        x = [*np.eye(len(SEGMENTS))[c.segment[0]],
             _sq(c.budget[0], p), _sq(c.price_sensitivity[0], 1.0), _sq(c.patience[0], 10.0),
             *c.channel_pref[0], *np.eye(len(CHANNELS))[self.last["channel"]], *c.unsubscribed[0].astype(float),
             _sq(day - self.last_purchase_day, 30.0), _sq(c.visits[0], 5.0), _sq(c.purchases[0], 3.0),
             _sq(c.revenue[0], 3.0 * p),
             _sq(self.offers_made, 3.0), self.last_offer, pending, _sq(self.messages, 5.0),
             has.sum() / CART_SLOTS, _sq(cart_value, 2.0 * p),
             float(self.last["purchased"]), _sq(self.last["clicks"], 3.0), min(self.last["session_length"] / cfg.max_steps, 1.0),
             max(cfg.horizon_days - day, 0) / cfg.horizon_days, min(day / cfg.horizon_days, 1.0), self.churn_risk]
        assert len(x) == OBS_SIZE and len(MESSAGE_KINDS) == len(CHANNELS)
        return np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)  # float32 rounding of sq() may touch 1


def _no_visit() -> dict[str, Any]:
    out: dict[str, Any] = {k: 0 for k in SESSION_KEYS}
    out.update(visited=False, revenue=0.0, discount_cost=0.0, purchases=0, purchased=False, channel=None)
    return out
