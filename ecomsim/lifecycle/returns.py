"""The return-time draw: day of the next visit, churn, and what the planned messages did on the way.

Implements the **Return time** and **Messages** paragraphs of ``ecomsim.lifecycle.params``
for ``n`` customers at once. Days since the visit ``j = 1, 2, ...`` are scanned in
windows of ``WINDOW`` days (most gaps are short, so most rows finish in the first
window); a row ends at its first visit day, its churn day, or ``until``.

Every row uses ``RETURN_DRAWS`` uniforms, whatever happens (so a customer's stream
stays aligned however many messages are planned): ``MAX_MESSAGES`` for the
unsubscribe decisions, two for the visit and churn exponentials (``-log(1 - u)``),
one for the channel of a visit that answers a message.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecomsim.lifecycle.params import MESSAGE_KINDS, LifecycleParams

WINDOW = 64  # days scanned per pass
MAX_MESSAGES = 8  # messages one plan may hold
RETURN_DRAWS = MAX_MESSAGES + 3
NEVER = np.iinfo(np.int64).max // 4  # "no visit within the horizon"


@dataclass
class ReturnInputs:
    """What the hazards need, per row, at the visit (after its updates). Offsets are days after the visit.

    Attributes:
        visit_rate, churn_hazard: ``(n,)`` per-day base hazards ``lambda_n``, ``h_n``.
        need_deficit: ``(n,)`` ``sum_c phi_c (1 - nu_c)``, so ``nubar_j - 1 = -need_deficit * exp(-j / tau)``.
        loyalty, annoyance, experience: ``(n,)`` ``L``, ``A`` and ``e`` at the visit.
        coupon: ``(n,)`` discount of a valid coupon (0 = none); ``coupon_until``: last offset it is valid.
        cart_until: ``(n,)`` last offset the carried cart is kept (0 = no cart).
        message_day: ``(n, M)`` int64 planned offsets (0 = no message); ``message_kind``: ``(n, M)`` int64.
        unsubscribed: ``(n, 3)`` bool per message kind, before the gap.
        until: ``(n,)`` int64 last offset simulated (the horizon).
    """

    visit_rate: np.ndarray
    churn_hazard: np.ndarray
    need_deficit: np.ndarray
    loyalty: np.ndarray
    annoyance: np.ndarray
    experience: np.ndarray
    coupon: np.ndarray
    coupon_until: np.ndarray
    cart_until: np.ndarray
    message_day: np.ndarray
    message_kind: np.ndarray
    unsubscribed: np.ndarray
    until: np.ndarray


@dataclass
class ReturnDraw:
    """Result for ``n`` rows.

    Attributes:
        visit: ``(n,)`` int64 offset of the next visit, ``NEVER`` if none (churned or past ``until``).
        churn: ``(n,)`` int64 offset of churn, ``NEVER`` if not within the scan.
        channel: ``(n,)`` int64 channel forced by a message answered on the visit day, -1 = from preferences.
        sent: ``(n, M)`` bool messages delivered (planned on or before the visit, kind not unsubscribed).
        unsubscribed: ``(n, 3)`` bool after the sent messages.
        annoyance_at_visit: ``(n,)`` ``A`` on the visit day (messages of that day included).
    """

    visit: np.ndarray
    churn: np.ndarray
    channel: np.ndarray
    sent: np.ndarray
    unsubscribed: np.ndarray
    annoyance_at_visit: np.ndarray


def _organic(p: LifecycleParams, x: ReturnInputs, base: np.ndarray, r: np.ndarray, j: np.ndarray) -> np.ndarray:
    """``(len(r), W)`` visit hazard without messages, rows ``r`` on offsets ``j`` (``(1, W)`` or ``(len(r), 1)``)."""
    logit = (-p.return_need * x.need_deficit[r, None] * np.exp(-j / p.need_regrowth_days)
             + p.return_loyalty * x.loyalty[r, None] * np.exp(-j / p.loyalty_memory_days)
             + p.return_coupon * x.coupon[r, None] * (j <= x.coupon_until[r, None])
             + p.return_cart * (j <= x.cart_until[r, None]))
    return base[r, None] * np.exp(logit) * (1.0 + p.revisit_boost * np.exp(-(j - 1) / p.revisit_days))


def return_probability(p: LifecycleParams, x: ReturnInputs, days: int) -> np.ndarray:
    """``(n,)`` probability of a visit within ``days`` days, exactly, for inputs without planned messages.

    This is what the hazards say given the full hidden state (the reference world's Bayes-optimal
    forecast); ``1 -`` it is the churn risk "no visit in the next ``days`` days". Each day churn comes
    first (probability ``1 - exp(-haz_j)``), then a visit (``1 - exp(-lam_j)``); ``until`` is ignored.
    """
    if isinstance(days, bool) or not isinstance(days, (int, np.integer)) or days < 1:
        raise ValueError(f"days must be a positive whole number, got {days!r}")
    if x.message_day.shape[1] and (x.message_day > 0).any():
        raise ValueError("return_probability covers inputs without planned messages (message_day all 0)")
    rows = np.arange(len(x.visit_rate))
    j = np.arange(1, days + 1)[None, :]
    lam = _organic(p, x, x.visit_rate * np.exp(p.return_experience * x.experience), rows, j)
    loyal = x.loyalty[:, None] * np.exp(-j / p.loyalty_memory_days)
    annoy = x.annoyance[:, None] * np.exp(-j / p.annoyance_memory_days)
    haz = x.churn_hazard[:, None] * np.exp(-p.churn_loyalty * loyal + p.churn_annoyance * annoy)
    stay = np.exp(-haz)  # not churned on day j
    visit = stay * -np.expm1(-lam)  # ... and visiting that day
    quiet = np.cumprod(stay * np.exp(-lam), axis=1)  # neither, every day up to j
    before = np.concatenate([np.ones((len(rows), 1)), quiet[:, :-1]], axis=1)
    return (before * visit).sum(axis=1)


def _deliveries(p: LifecycleParams, x: ReturnInputs, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sequential delivery and unsubscribe decisions of the planned messages, in day order.

    Returns ``delivered`` ``(n, M)`` (assuming the day is reached) and ``unsub_after`` ``(n, M)``: whether
    message ``m`` unsubscribed its kind.
    """
    n, m = x.message_day.shape
    delivered = np.zeros((n, m), dtype=bool)
    unsub_after = np.zeros((n, m), dtype=bool)
    if m == 0 or not (x.message_day > 0).any():
        return delivered, unsub_after
    order = np.argsort(np.where(x.message_day > 0, x.message_day, NEVER), axis=1, kind="stable")
    unsub = x.unsubscribed.copy()
    rows = np.arange(n)
    tau = p.annoyance_memory_days
    for pos in range(m):
        col = order[:, pos]
        day = x.message_day[rows, col]
        kind = x.message_kind[rows, col]
        planned = day > 0
        ok = planned & ~unsub[rows, kind]
        # annoyance just before this message: the visit's, decayed, plus earlier deliveries
        earlier = delivered & (x.message_day <= day[:, None])
        before = x.annoyance * np.exp(-day / tau) + (earlier * np.exp(-(day[:, None] - x.message_day) / tau)).sum(axis=1)
        quits = ok & (u[rows, col] < 1.0 - np.exp(-np.asarray(p.message_unsubscribe)[kind] * (1.0 + before)))
        delivered[rows, col] = ok
        unsub_after[rows, col] = quits
        unsub[rows[quits], kind[quits]] = True
    return delivered, unsub_after


def draw_return(p: LifecycleParams, x: ReturnInputs, u: np.ndarray) -> ReturnDraw:
    """Draw the next visit and churn of every row from uniforms ``u`` ``(n, RETURN_DRAWS)`` (module docstring)."""
    n, m = x.message_day.shape
    if m > MAX_MESSAGES:
        raise ValueError(f"a message plan holds at most {MAX_MESSAGES} messages, got {m} columns")
    u_msg = u[:, :m]
    exp = -np.log1p(-u[:, MAX_MESSAGES: MAX_MESSAGES + 2])
    u_channel = u[:, MAX_MESSAGES + 2]
    delivered, unsub_after = _deliveries(p, x, u_msg)
    response = np.asarray(p.message_response)[x.message_kind] * delivered  # (n, M) hazard added on its day
    visit = np.full(n, NEVER, dtype=np.int64)
    churn = np.full(n, NEVER, dtype=np.int64)
    cum = np.zeros((n, 2))  # cumulative visit and churn hazard so far
    open_rows = np.flatnonzero(x.until >= 1)
    base = x.visit_rate * np.exp(p.return_experience * x.experience)
    start = 1
    while len(open_rows):
        r = open_rows
        j = start + np.arange(WINDOW)[None, :]  # (1, W) offsets
        loyal = x.loyalty[r, None] * np.exp(-j / p.loyalty_memory_days)
        lam = _organic(p, x, base, r, j)
        mday = x.message_day[r]
        if m and (mday > 0).any():
            hit = mday[:, None, :] == j[:, :, None]  # (rows, W, M)
            lam = lam + (hit * response[r, None, :]).sum(axis=2)
            since = j[:, :, None] - mday[:, None, :]
            annoy = x.annoyance[r, None] * np.exp(-j / p.annoyance_memory_days) + (
                delivered[r, None, :] * (since >= 0) * np.exp(-np.maximum(since, 0) / p.annoyance_memory_days)).sum(axis=2)
        else:
            annoy = x.annoyance[r, None] * np.exp(-j / p.annoyance_memory_days)
        haz = x.churn_hazard[r, None] * np.exp(-p.churn_loyalty * loyal + p.churn_annoyance * annoy)
        live = j <= x.until[r, None]
        lam, haz = lam * live, haz * live
        cv = cum[r, 0, None] + np.cumsum(lam, axis=1)
        cc = cum[r, 1, None] + np.cumsum(haz, axis=1)
        hit_v = cv >= exp[r, 0, None]
        hit_c = cc >= exp[r, 1, None]
        first_v = np.where(hit_v.any(axis=1), np.argmax(hit_v, axis=1), WINDOW)
        first_c = np.where(hit_c.any(axis=1), np.argmax(hit_c, axis=1), WINDOW)
        churned = (first_c < WINDOW) & (first_c <= first_v)  # churn checked first on the same day
        visited = (first_v < WINDOW) & ~churned
        churn[r[churned]] = start + first_c[churned]
        visit[r[visited]] = start + first_v[visited]
        cum[r, 0], cum[r, 1] = cv[:, -1], cc[:, -1]
        done = churned | visited | (start + WINDOW - 1 >= x.until[r])
        open_rows = r[~done]
        start += WINDOW
    reached = visit != NEVER
    sent = delivered & (x.message_day > 0) & (x.message_day <= np.where(reached, visit, x.until)[:, None])
    unsub = x.unsubscribed.copy()
    rows, cols = np.nonzero(sent & unsub_after)
    unsub[rows, x.message_kind[rows, cols]] = True
    # A at the visit day, and the channel of a visit that answers a message of that day
    v = np.where(reached, visit, 0)
    since = v[:, None] - x.message_day
    annoy_v = x.annoyance * np.exp(-v / p.annoyance_memory_days) + (
        sent * (since >= 0) * np.exp(-np.maximum(since, 0) / p.annoyance_memory_days)).sum(axis=1)
    channel = _answered_channel(p, x, response, sent, v, reached, base, u_channel)
    return ReturnDraw(visit=visit, churn=churn, channel=channel, sent=sent, unsubscribed=unsub,
                      annoyance_at_visit=np.where(reached, annoy_v, x.annoyance))


def _answered_channel(p, x, response, sent, v, reached, base, u) -> np.ndarray:
    """Channel of a visit on a message day: kind ``k`` with probability ``message_response[k] / lam``."""
    n = len(v)
    channel = np.full(n, -1, dtype=np.int64)
    same_day = sent & (x.message_day == v[:, None]) & reached[:, None]
    rows = np.flatnonzero(same_day.any(axis=1))
    if not len(rows):
        return channel
    organic = _organic(p, x, base, rows, v[rows, None])[:, 0]
    resp = np.zeros((len(rows), len(MESSAGE_KINDS)))
    for k in range(len(MESSAGE_KINDS)):
        resp[:, k] = (response[rows] * same_day[rows] * (x.message_kind[rows] == k)).sum(axis=1)
    total = organic + resp.sum(axis=1)
    cdf = np.cumsum(resp, axis=1) / total[:, None]
    pick = (u[rows, None] >= cdf).sum(axis=1)  # == 3: an organic visit
    channel[rows] = np.where(pick < len(MESSAGE_KINDS), pick, -1)
    return channel
