"""``N`` customers of ``ecomsim/Retention-v0`` stepped together (:class:`RetentionBatch`).

The single env is a batch of one and the native vector env a batch of ``num_envs``
(``ecomsim.lifecycle.retention``, where the rules are written down). Every draw a
customer makes comes from her own streams (``ecomsim.lifecycle.model``), and each row
goes through the same calls whether alone or in a batch (entry, then per step the gap
and, when she comes back, the visit), so row ``i`` of a batch lives the life of a
single env given the same stream key and actions.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np

from ecomsim.config import CHANNELS, EnvConfig
from ecomsim.lifecycle.entry import Entrants, concat_entrants, draw_entrants
from ecomsim.lifecycle.model import Customers, Lifecycle
from ecomsim.lifecycle.retention_config import RetentionConfig
from ecomsim.lifecycle.return_model import OBSERVATION_NAMES, load_return_model
from ecomsim.lifecycle.returns import NEVER
from ecomsim.lifecycle.sessions import SessionVisits
from ecomsim.lifecycle.strategies import STRATEGY_NAMES, RowStrategies
from ecomsim.lifecycle.visits import CART_SLOTS
from ecomsim.shoppers.population import SEGMENTS, ShopperPopulation
from ecomsim.sim.streams import key_from_generator

OBS_SIZE = len(SEGMENTS) + 3 + 3 * len(CHANNELS) + 4 + 4 + 2 + 3 + 3
assert len(OBSERVATION_NAMES) == OBS_SIZE
CHURN_RISK_INDEX = OBS_SIZE - 1  # the churn risk is the last feature
SESSION_KEYS = ("clicks", "impressions", "relevant_shown", "disappointments", "session_length", "recovered")
#: per-step info keys (arrays over the rows that stepped); ``channel`` is an index into CHANNELS, -1 = no visit
INFO_KEYS = ("offer", "strategy", "message_cost", "messages_sent", "visited", "revenue", "discount_cost", "purchases",
             "purchased", "channel", "day", "days_to_next_visit", "churned", "profit", "churn_risk") + SESSION_KEYS
_SIDE = ("last_channel", "last_purchased", "last_clicks", "last_length", "last_purchase_day", "offers_made",
         "last_offer", "messages", "churn_risk")


def _sq(x: np.ndarray, scale: float) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / (x + scale)


class RetentionBatch:
    """``num`` customers, their lifecycle state and the env's bookkeeping (rules: ``ecomsim.lifecycle.retention``).

    Args:
        config: the env's options.
        num: customers (rows).
    """

    def __init__(self, config: RetentionConfig, num: int) -> None:
        self.config = cfg = config
        self.num = num
        self.strategy = RowStrategies()
        session = EnvConfig(user_model=cfg.user_model, catalog=cfg.catalog, max_steps=cfg.max_steps)
        self.sim = SessionVisits(session, self.strategy, max_batch=1 << 30)  # never split: one choice per row
        self.catalog = self.sim.catalog
        self.lifecycle = Lifecycle(self.catalog, cfg.params)
        self.population = ShopperPopulation(self.catalog)
        self.price_scale = float(np.median(self.catalog.price))
        self.strategy_index = np.array([STRATEGY_NAMES.index(s) for s in cfg.strategies], dtype=np.int64)
        self.customers: Customers | None = None
        self.return_model = load_return_model(cfg.return_model) if cfg.churn_model == "learned" else None
        self._drawn: dict[int, tuple[Entrants, int]] = {}  # stream key -> (prefetched entrants, row in them)
        self.side = {k: np.zeros(num, dtype=np.float64) for k in _SIDE}
        self.side["last_channel"] = np.zeros(num, dtype=np.int64)

    # ================================================================ reset
    def reset_rows(self, rows: np.ndarray, keys: np.ndarray) -> dict[str, np.ndarray]:
        """New customers in ``rows`` ``(k,)``, drawn from stream ``keys`` ``(k,)``; returns their ``day`` 0,
        trial ``revenue``, entry ``attempts`` and ``churn_risk`` ``(k,)``."""
        rows = np.asarray(rows, dtype=np.int64)
        entrants = self._entrants(np.asarray(keys, dtype=np.uint64))
        # until = day 0: the return after the trial is drawn by the first step, with its coupon and messages
        new = self.lifecycle.new_customers(entrants, until=0)
        if self.customers is None:
            assert len(rows) == self.num, "the first reset covers every row"
            self.customers = new.take(np.argsort(rows))
        else:
            _put(self.customers, rows, new)
        trial, s = entrants.trial, self.side
        s["last_channel"][rows] = entrants.context.channel
        s["last_purchased"][rows] = 1.0
        s["last_clicks"][rows] = trial.clicks
        s["last_length"][rows] = trial.session_length
        for k in ("last_purchase_day", "offers_made", "last_offer", "messages"):
            s[k][rows] = 0.0
        s["churn_risk"][rows] = self._churn_risk(rows)
        return {"day": np.zeros(len(rows), dtype=np.int64), "revenue": trial.revenue.copy(),
                "attempts": entrants.attempts.copy(), "churn_risk": s["churn_risk"][rows].copy()}

    def prefetch(self, keys: np.ndarray) -> None:
        """Draw the entrants of stream ``keys`` ``(k,)`` now, in one batch, for later :meth:`reset_rows` calls.

        An entrant is a function of her key (``ecomsim.lifecycle.entry``), so drawing her early changes nothing
        but speed: a vector env that knows its rows' next keys draws many at once instead of a few per step
        (each draw runs first visits until every row bought: dozens of session rounds however few rows)."""
        keys = np.asarray(keys, dtype=np.uint64)
        new = np.array([k for k in dict.fromkeys(keys.tolist()) if k not in self._drawn], dtype=np.uint64)
        if len(new):
            drawn = self._draw(new)
            self._drawn.update({int(k): (drawn, j) for j, k in enumerate(new.tolist())})

    def forget(self) -> None:
        """Drop the prefetched entrants (their keys will not come: the rows' generators were re-seeded)."""
        self._drawn.clear()

    def _draw(self, keys: np.ndarray) -> Entrants:
        self.strategy.choice = STRATEGY_NAMES.index("popularity")  # the trial: an ordinary session
        return draw_entrants(self.population, np.zeros(len(keys), dtype=np.int64), self.sim, keys=keys)

    def _entrants(self, keys: np.ndarray) -> Entrants:
        """The entrants of ``keys``: prefetched ones taken out of the cache, the others drawn now."""
        missing = np.array([k for k in keys.tolist() if k not in self._drawn], dtype=np.uint64)
        if len(missing):
            self.prefetch(missing)
        parts = [self._drawn[int(k)] for k in keys.tolist()]
        for k in keys.tolist():
            self._drawn.pop(int(k), None)  # used (twice when two rows were given one key: same customer)
        return concat_entrants([e.take(np.array([j])) for e, j in parts])

    # ================================================================= step
    def step(self, rows: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Decide for customers ``rows`` ``(k,)`` with ``actions`` ``(k,)`` (checked before): the gap, then the
        visits of those who come back. Returns ``reward`` ``(k,)``, ``terminated`` ``(k,)`` and the info arrays
        (``INFO_KEYS``); observations come from :meth:`observe` after."""
        cfg, lc, c, s = self.config, self.lifecycle, self.customers, self.side
        rows = np.asarray(rows, dtype=np.int64)
        k = len(rows)
        parts = self._parts(actions)
        offer, days = self._decision(parts)
        width = days.shape[1]
        kinds = np.repeat(self._message_kind(rows)[:, None], width, axis=1)
        gap = lc.gap(c, rows, cfg.horizon_days, coupon=offer, message_day=days, message_kind=kinds)
        s["offers_made"][rows] += offer > 0
        s["last_offer"][rows] = offer
        s["messages"][rows] += gap.messages_sent
        info: dict[str, Any] = {"offer": offer, "strategy": parts[:, 2], "message_cost": gap.message_cost,
                                "messages_sent": gap.messages_sent, "days_to_next_visit": np.full(k, -1, np.int64),
                                "churned": gap.churned.copy(), "channel": np.full(k, -1, np.int64),
                                "churn_risk": s["churn_risk"][rows].copy()}
        for key in ("revenue", "discount_cost"):
            info[key] = np.zeros(k)
        for key in ("purchases",) + SESSION_KEYS:
            info[key] = np.zeros(k, dtype=np.int64)
        info["purchased"] = np.zeros(k, dtype=bool)
        visited = ~gap.churned & (gap.next_day != NEVER)
        end = np.where(gap.churned, np.minimum(c.churn_day[rows], cfg.horizon_days), cfg.horizon_days)
        info["day"] = np.where(visited, gap.next_day, end).astype(np.int64)
        info["visited"] = visited
        v = np.flatnonzero(visited)
        if len(v):
            vr = rows[v]
            info["days_to_next_visit"][v] = gap.next_day[v] - c.last_day[vr]
            self.strategy.choice = self.strategy_index[parts[v, 2]]
            step = lc.visit(c, vr, self.sim, until=gap.next_day[v])  # until = the visit day: no return drawn
            out = step.outcome
            info["revenue"][v], info["discount_cost"][v] = out.revenue, out.discount_cost
            info["purchases"][v], info["purchased"][v] = out.items_bought, out.purchased
            for key in SESSION_KEYS:
                info[key][v] = getattr(out, key)
            info["channel"][v] = step.channel
            info["churned"][v] = step.churned  # she left after this purchase
            s["last_purchase_day"][vr] = np.where(out.purchased, gap.next_day[v], s["last_purchase_day"][vr])
            s["last_channel"][vr], s["last_purchased"][vr] = step.channel, out.purchased
            s["last_clicks"][vr], s["last_length"][vr] = out.clicks, out.session_length
            live = v[~step.churned]
            s["churn_risk"][vr] = 1.0
            if len(live):
                s["churn_risk"][rows[live]] = self._churn_risk(rows[live])
            info["churn_risk"][v] = s["churn_risk"][vr]
        reward = cfg.margin * (info["revenue"] + info["discount_cost"]) - info["discount_cost"] - info["message_cost"]
        info["profit"] = reward
        terminated = ~visited | info["churned"]
        return reward, terminated, info

    def decision(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The coupons ``(k,)`` and message days ``(k, M)`` (days after the visit, 0 = none) of ``actions``."""
        return self._decision(self._parts(actions))

    def _parts(self, actions: np.ndarray) -> np.ndarray:
        """``(k, 3)`` offer, plan and strategy indexes of ``actions``."""
        return np.array([self.config.decode(a) for a in actions], dtype=np.int64).reshape(len(actions), 3)

    def _decision(self, parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.config
        plans = [cfg.message_plans[p] for p in parts[:, 1]]
        days = np.zeros((len(plans), max((len(p) for p in plans), default=0)), dtype=np.int64)
        for i, p in enumerate(plans):
            days[i, :len(p)] = p
        return np.asarray(cfg.offers)[parts[:, 0]], days

    # ========================================================== observation
    def observe(self, rows: np.ndarray) -> np.ndarray:
        """``(k, OBS_SIZE)`` float32 observations of ``rows`` (features: ``ecomsim.lifecycle.retention``)."""
        cfg, c, s, p = self.config, self.customers, self.side, self.price_scale
        rows = np.asarray(rows, dtype=np.int64)
        day = c.last_day[rows].astype(np.float64)
        cart = c.cart[rows]
        has = cart >= 0
        cart_value = (self.catalog.price[np.where(has, cart, 0)] * has).sum(axis=1)
        pending = np.where(day <= c.coupon_until[rows], c.coupon[rows], 0.0)
        cols = [np.eye(len(SEGMENTS))[c.segment[rows]],
                _sq(c.budget[rows], p)[:, None], _sq(c.price_sensitivity[rows], 1.0)[:, None],
                _sq(c.patience[rows], 10.0)[:, None], c.channel_pref[rows],
                np.eye(len(CHANNELS))[s["last_channel"][rows]], c.unsubscribed[rows].astype(np.float64),
                np.stack([_sq(day - s["last_purchase_day"][rows], 30.0), _sq(c.visits[rows], 5.0),
                          _sq(c.purchases[rows], 3.0), _sq(c.revenue[rows], 3.0 * p),
                          _sq(s["offers_made"][rows], 3.0), s["last_offer"][rows], pending,
                          _sq(s["messages"][rows], 5.0), has.sum(axis=1) / CART_SLOTS, _sq(cart_value, 2.0 * p),
                          s["last_purchased"][rows], _sq(s["last_clicks"][rows], 3.0),
                          np.minimum(s["last_length"][rows] / cfg.max_steps, 1.0),
                          np.maximum(cfg.horizon_days - day, 0.0) / cfg.horizon_days,
                          np.minimum(day / cfg.horizon_days, 1.0), s["churn_risk"][rows]], axis=1)]
        x = np.concatenate(cols, axis=1)
        assert x.shape == (len(rows), OBS_SIZE)
        return np.clip(x, 0.0, 1.0).astype(np.float32)  # float32 rounding of sq() may touch 1

    # =============================================================== pieces
    def _message_kind(self, rows: np.ndarray) -> np.ndarray:
        """``(k,)`` the kind of each customer's most preferred channel she still hears from (kinds follow
        ``CHANNELS``; all unsubscribed: her preferred one, which then delivers nothing and costs nothing)."""
        c = self.customers
        pref = np.where(c.unsubscribed[rows], -1.0, c.channel_pref[rows])
        return np.where((pref >= 0).any(axis=1), np.argmax(pref, axis=1), np.argmax(c.channel_pref[rows], axis=1))

    def _churn_risk(self, rows: np.ndarray) -> np.ndarray:
        """``(k,)`` P(no visit in ``churn_days``) after a visit: the return model's forecast from the rest of the
        observation (``churn_model="learned"``), or the reference lifecycle's Bayes risk."""
        if self.return_model is None:
            return 1.0 - self.lifecycle.return_probability(self.customers, rows, self.config.churn_days)
        return self.return_model.churn_risk(self.observe(rows)[:, :CHURN_RISK_INDEX], self.config.churn_days)


PREFETCH = 256  # entrants a vector env's top-up aims to draw at once (KeyQueues)


class KeyQueues:
    """Each row's next customers' stream keys, drawn ahead from the row's own generator, in order.

    A vector env resets a row with ``key_from_generator(gens[i], 1)``, as a single env does from its
    ``np_random``; drawing those keys early gives the same sequence, and lets ``batch`` prefetch the entrants of
    every row's next ``depth`` customers in one draw when a row runs out (:meth:`RetentionBatch.prefetch`).

    Args:
        gens: one generator per row.
        batch: where the entrants are prefetched.
        depth: keys drawn ahead per row at each top-up; default ``max(1, PREFETCH // len(gens))``, so a top-up
            draws at most about ``PREFETCH`` entrants: an entrant draw costs dozens of session rounds whatever
            its size, so a few rows gain from waiting for company, but at a few hundred rows a round of
            learned shoppers costs in proportion to its rows and larger draws only front-load work (measured:
            1024 rows with 4 keys each drew 4x slower per entrant than ~100 at a time).
    """

    def __init__(self, gens: list[np.random.Generator], batch: RetentionBatch, depth: int | None = None) -> None:
        depth = max(1, PREFETCH // max(len(gens), 1)) if depth is None else depth
        self.gens, self.batch, self.depth = gens, batch, depth
        self.queues: list[list[int]] = [[] for _ in gens]
        batch.forget()

    def next(self, rows: np.ndarray) -> np.ndarray:
        """``(k,)`` uint64: the next key of each row of ``rows``."""
        if any(not self.queues[i] for i in rows):
            new: list[int] = []
            for i, q in enumerate(self.queues):
                while len(q) < self.depth:
                    q.append(int(key_from_generator(self.gens[i], 1)[0]))
                    new.append(q[-1])
            self.batch.prefetch(np.array(new, dtype=np.uint64))
        return np.array([self.queues[i].pop(0) for i in rows], dtype=np.uint64)


def _put(dst: Customers, rows: np.ndarray, src: Customers) -> None:
    """Write customers ``src`` (``len(rows)`` of them) over rows ``rows`` of ``dst``, streams included."""
    for f in fields(dst):
        if f.name != "streams":
            getattr(dst, f.name)[rows] = getattr(src, f.name)
    for name in ("key", "base", "counter"):
        getattr(dst.streams, name)[rows] = getattr(src.streams, name)
