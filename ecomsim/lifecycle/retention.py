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
and days gone as shares of the horizon; churn risk (names in order:
``ecomsim.lifecycle.return_model.OBSERVATION_NAMES``). The churn risk is P(no visit in
the next ``churn_days`` days) if the shop sends nothing, computed right after the visit.
By default (``churn_model="learned"``) it is the return-time model's forecast from the
other 31 features (``ecomsim.lifecycle.return_model``: a discrete-time hazard network
trained on reference-world lifecycle logs): what a shop could compute from the history.
``churn_model="reference"`` puts the reference lifecycle's Bayes-optimal risk there
instead (``1 - Lifecycle.return_probability(churn_days)`` from the hidden state: need,
loyalty, annoyance, visit rate, churn propensity), which no real shop could see. Either
way only this column differs: the customer's life is the same.

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
``gym.make_vec("ecomsim/Retention-v0", num_envs=N)`` gives :class:`RetentionVectorEnv`: ``N``
customers stepped together (one batched session per step for all those who come back,
``ecomsim.lifecycle.retention_batch``), ``NEXT_STEP`` autoreset; sub-env ``i`` reset with
``seed=s`` lives the episode of a single env reset with ``seed=s + i`` (tested on the reference
world; with DNN shoppers equal too in a check of 120 steps, but not promised bit for bit: a
batch of network rows may round differently from rows one by one). The learned churn risk
is such a network: the observation's last column agrees to 1e-6, not bit for bit, and
nothing else depends on it. Its infos are arrays
(``channel`` and ``strategy`` as indexes into ``CHANNELS`` and the options' ``strategies``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from ecomsim.config import CHANNELS
from ecomsim.lifecycle.retention_batch import CHURN_RISK_INDEX, INFO_KEYS, OBS_SIZE, KeyQueues, RetentionBatch
from ecomsim.lifecycle.retention_config import RetentionConfig
from ecomsim.sim.streams import key_from_generator

__all__ = ["CHURN_RISK_INDEX", "OBS_SIZE", "RetentionEnv", "RetentionVectorEnv"]


def check_actions(action, n: int, num: int) -> np.ndarray:
    """``(num,)`` int64 actions, or a ``ValueError`` naming the value and the valid range ``[0, n)``."""
    arr = np.asarray(action)
    if arr.size != num or arr.ndim > 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"action must be {'one integer' if num == 1 else f'{num} integers'} in [0, {n - 1}] "
                         f"(offer x message plan x strategy), got {action!r}")
    arr = arr.reshape(num).astype(np.int64)
    bad = arr[(arr < 0) | (arr >= n)]
    if bad.size:
        raise ValueError(f"action must be in [0, {n - 1}] (offer x message plan x strategy), got {int(bad[0])}")
    return arr


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
        self.batch = RetentionBatch(cfg, 1)
        self.lifecycle, self.catalog = self.batch.lifecycle, self.batch.catalog
        self.action_space = spaces.Discrete(cfg.num_actions)
        self.observation_space = spaces.Box(0.0, 1.0, (OBS_SIZE,), dtype=np.float32)
        self._done = True
        self._row = np.zeros(1, dtype=np.int64)

    @property
    def customer(self):
        """The customer's :class:`~ecomsim.lifecycle.model.Customers` (one row)."""
        return self.batch.customers

    @property
    def churn_risk(self) -> float:
        return float(self.batch.side["churn_risk"][0])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        info = self.batch.reset_rows(self._row, key_from_generator(self.np_random, 1))
        self._done = False
        return self.batch.observe(self._row)[0], {k: v[0].item() for k, v in info.items()}

    def step(self, action):
        if self._done:
            raise RuntimeError("call reset() before step(): the episode has ended or never started")
        cfg = self.config
        a = check_actions(action, cfg.num_actions, 1)
        reward, terminated, info = self.batch.step(self._row, a)
        out = {k: info[k][0].item() for k in INFO_KEYS}
        out["strategy"] = cfg.strategies[out["strategy"]]
        out["channel"] = CHANNELS[out["channel"]] if out["channel"] >= 0 else None
        out["message_plan"] = list(cfg.message_plans[cfg.decode(int(a[0]))[1]])
        self._done = bool(terminated[0])
        return self.batch.observe(self._row)[0], float(reward[0]), self._done, False, out


class RetentionVectorEnv(VectorEnv):
    """``num_envs`` customers stepped together, ``NEXT_STEP`` autoreset (module docstring, Vectorisation).

    Args:
        num_envs: customers side by side.
        **kwargs: :class:`RetentionConfig` fields.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, render_mode: str | None = None, **kwargs: Any) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if render_mode is not None:
            raise ValueError(f"render_mode must be None (Retention-v0 has no rendering), got {render_mode!r}")
        self.num_envs = n = int(num_envs)
        self.render_mode = None
        self.config = cfg = RetentionConfig.from_kwargs(kwargs)
        self.batch = RetentionBatch(cfg, n)
        self.single_action_space = spaces.Discrete(cfg.num_actions)
        self.single_observation_space = spaces.Box(0.0, 1.0, (OBS_SIZE,), dtype=np.float32)
        self.action_space = batch_space(self.single_action_space, n)
        self.observation_space = batch_space(self.single_observation_space, n)
        self._gens: KeyQueues | None = None
        self._autoreset = np.zeros(n, dtype=bool)
        self._rows = np.arange(n)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        n = self.num_envs
        seeds = seed if isinstance(seed, list) else [None if seed is None else seed + i for i in range(n)]
        if len(seeds) != n:
            raise ValueError(f"seed must be an int or a list of num_envs={n} seeds, got {len(seeds)}")
        if self._gens is None or seed is not None:
            self._gens = KeyQueues([seeding.np_random(s)[0] for s in seeds], self.batch)
        info = self.batch.reset_rows(self._rows, self._keys(self._rows))
        self._autoreset[:] = False
        return self.batch.observe(self._rows), {**info, **{f"_{k}": np.ones(n, dtype=bool) for k in info}}

    def step(self, actions):
        n = self.num_envs
        acts = check_actions(actions, self.config.num_actions, n)
        rewards = np.zeros(n)
        terminated = np.zeros(n, dtype=bool)
        infos: dict[str, Any] = {}
        reset = np.flatnonzero(self._autoreset)
        stepped = np.flatnonzero(~self._autoreset)
        if len(stepped):
            r, term, info = self.batch.step(stepped, acts[stepped])
            rewards[stepped], terminated[stepped] = r, term
            _scatter(infos, info, stepped, n)
        if len(reset):
            _scatter(infos, self.batch.reset_rows(reset, self._keys(reset)), reset, n)
        self._autoreset = terminated.copy()
        return self.batch.observe(self._rows), rewards, terminated, np.zeros(n, dtype=bool), infos

    def _keys(self, rows: np.ndarray) -> np.ndarray:
        """One stream key per row from its own generator, as a single env's reset draws it (drawn ahead: the
        entrants of the rows' next customers are drawn together, ``KeyQueues``)."""
        return self._gens.next(rows)


def _scatter(infos: dict[str, Any], info: dict[str, np.ndarray], rows: np.ndarray, n: int) -> None:
    """Gymnasium's vector info layout: ``infos[k]`` ``(n,)`` with the mask ``infos["_" + k]``."""
    for k, v in info.items():
        if k not in infos:
            infos[k] = np.zeros(n, dtype=np.asarray(v).dtype)
            infos[f"_{k}"] = np.zeros(n, dtype=bool)
        infos[k][rows] = v
        infos[f"_{k}"][rows] = True
