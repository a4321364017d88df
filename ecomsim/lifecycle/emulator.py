r"""A fast emulator of visit outcomes, fitted to real sessions (:class:`VisitEmulator`).

Calibration loops simulate hundreds of cohorts; running every visit as a session
would take minutes each. The emulator reproduces what the lifecycle layer reads from
a session (``ecomsim.lifecycle.visits.VisitOutcome``) as smooth functions of the
visit context, fitted by :func:`fit_emulator` to sessions of
:class:`~ecomsim.lifecycle.sessions.SessionVisits` on randomised contexts.

**Features** ``f`` (``EMULATOR_FEATURES``): intent offset ``w`` and its square;
channel and segment indicators and the channel-intent interactions; ``lb = log(effective
budget / 100)`` (the coupon included) and its square; price sensitivity ``s`` and
``s * lb``; log patience; and what the strategy tends to show her: ``a_shown``, the
mean affinity ``<u, e_i>`` of her interest with the items the fitted sessions showed
(weighted by how often each was shown, ``shown_items`` / ``shown_share`` in the card),
its square and ``w * a_shown``; ``log appeal`` and ``log fit``, the shown-weighted means of
``sigmoid(3 a_i - 3.4)`` (how many shown items suit her) and of that times
``sigmoid(a_i - s log(price_i / budget))`` (those she would also pay for), and
``w * log fit``. Under a popularity ranking every shopper sees much the same items,
so whether they suit *her* is what separates a customer who buys from one who does
not; a cohort selected on a first purchase is rich in such customers.

**Outcomes** per visit, in this order:

* purchase in the session ``~ Bernoulli(sigmoid(f . w_buy))``;
* if bought: items ``= 1 + Poisson(exp(f . w_items))``, revenue ``= items * exp(f . w_price + sd_price * z)``,
  each item's category ``~ softmax_c(cat_bias_c + cat_affinity * <u, centroid_c>)``;
* session length ``= 1 + Geometric`` with mean ``exp([f, bought] . w_length)`` (at most ``max_steps``);
  impressions ``= slate_size * length``;
* clicks ``~ Poisson(exp([f, bought, log length] . w_clicks))``, disappointments ``~ Binomial(clicks, p_dis)``;
* relevant items ``~ Binomial(impressions, sigmoid(w_rel . [1, r_shown]))``, ``r_shown`` the
  shown-weighted share of items with ``<u, e_i> >= RELEVANT_AFFINITY``;
* an abandoned cart item with probability ``sigmoid([f, bought] . w_abandon)``, the item drawn from the
  fitted sessions' abandoned items.

The carried cart's checkout and the order's revenue use the same functions as the
real sessions (``recover_cart``, ``checkout``). The card
(``ecomsim/assets/visit_emulator.json``) is written by ``python scripts/calibrate_lifecycle.py``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
from scipy import optimize, stats
from sklearn.linear_model import LinearRegression, LogisticRegression, PoissonRegressor

from ecomsim.catalog import Catalog, load_catalog
from ecomsim.config import EnvConfig
from ecomsim.lifecycle.entry import draw_entrants
from ecomsim.lifecycle.params import COUPONS
from ecomsim.lifecycle.visits import (
    CART_SLOTS,
    RELEVANT_AFFINITY,
    VisitContext,
    VisitOutcome,
    checkout,
    push_cart,
    recover_cart,
    visit_streams,
)
from ecomsim.shoppers.population import CHANNEL_BUDGET, CHANNEL_PATIENCE, CHANNEL_SHARE, ShopperPopulation
from ecomsim.sim.streams import SessionStreams, key_from_generator

EMULATOR_FORMAT = "ecomsim-visit-emulator-v2"
EMULATOR_FEATURES = ("intent", "intent_sq", "web", "social", "web_x_intent", "social_x_intent", "seg_1", "seg_2",
                     "seg_3", "log_budget", "log_budget_sq", "sensitivity", "sensitivity_x_log_budget",
                     "log_patience", "shown_affinity", "shown_affinity_sq", "intent_x_shown_affinity",
                     "shown_appeal", "shown_fit", "intent_x_shown_fit")
EMULATOR_DRAWS = 14  # uniforms per emulated session (layout in ``VisitEmulator.sessions``)
MAX_CATEGORY_DRAWS = 4  # items whose category is drawn (more in one session are very rare)
SHOWN_ITEMS = 200  # most shown items kept in the card


class ShownItems:
    """The items a strategy shows, by share: ``a_shown`` and ``r_shown`` of an interest (module docstring)."""

    def __init__(self, catalog: Catalog, items: np.ndarray, share: np.ndarray) -> None:
        emb = catalog.embedding[items].astype(np.float64)
        self.emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        self.share = np.asarray(share, dtype=np.float64) / np.sum(share)
        self.log_price = np.log(catalog.price[items])

    def affinity(self, interest: np.ndarray) -> np.ndarray:
        """``(n,)`` shown-weighted mean affinity ``a_shown``."""
        return (interest @ self.emb.T) @ self.share

    def relevant(self, interest: np.ndarray) -> np.ndarray:
        """``(n,)`` shown-weighted share of relevant items ``r_shown``."""
        return (interest @ self.emb.T >= RELEVANT_AFFINITY) @ self.share

    def features(self, ctx: VisitContext) -> np.ndarray:
        """``(n, len(EMULATOR_FEATURES))`` features of the visit contexts."""
        w = ctx.intent_offset
        lb = np.log(ctx.effective_budget() / 100.0)
        s = ctx.price_sensitivity
        ch = np.eye(3)[ctx.channel][:, 1:]
        aff = ctx.interest @ self.emb.T  # (n, K) affinity with each shown item
        a = aff @ self.share
        # appeal: how many shown items suit her (a click-like index); fit: those she would also pay for
        appeal = _sigmoid(3.0 * aff - 3.4) @ self.share
        fit = (_sigmoid(3.0 * aff - 3.4) * _sigmoid(aff - s[:, None] * (self.log_price[None, :] - np.log(
            ctx.effective_budget())[:, None]))) @ self.share
        return np.column_stack([w, w**2, ch, ch * w[:, None], np.eye(4)[ctx.segment][:, 1:], lb, lb**2, s, s * lb,
                                np.log(ctx.patience), a, a**2, w * a, np.log(appeal), np.log(fit), w * np.log(fit)])


class VisitEmulator:
    """Emulated visits (a :class:`~ecomsim.lifecycle.visits.VisitSimulator`); see the module docstring.

    Args:
        card: the fitted coefficients and their provenance (as written by :meth:`save`).
        catalog: the catalog the sessions ran on (default: loaded from the card's ``config``).
    """

    def __init__(self, card: dict, catalog: Catalog | None = None) -> None:
        if card.get("format") != EMULATOR_FORMAT:
            raise ValueError(f"visit emulator card has format {card.get('format')!r}, expected {EMULATOR_FORMAT!r}")
        if tuple(card.get("features", ())) != EMULATOR_FEATURES:
            raise ValueError(f"visit emulator card has features {card.get('features')}, expected {list(EMULATOR_FEATURES)}")
        self.card = card
        self.config = EnvConfig.from_kwargs(card["config"])
        self.catalog = catalog if catalog is not None else load_catalog(self.config.catalog)
        self.w = {k: np.asarray(v, dtype=np.float64) for k, v in card["weights"].items()}
        self.centroids = ShopperPopulation(self.catalog).centroids
        self.shown = ShownItems(self.catalog, np.asarray(card["shown_items"]), np.asarray(card["shown_share"]))
        self._abandon_items = np.asarray(card["abandoned_items"], dtype=np.int64)
        self._abandon_cdf = np.cumsum(card["abandoned_share"])

    def visit(self, context: VisitContext, keys: np.ndarray) -> VisitOutcome:
        context.validate()
        n = len(context)
        u, session_keys = visit_streams(keys)
        recovered, cart_left = recover_cart(context, self.catalog, u)
        s = self.sessions(context, session_keys)
        revenue, cost, items, cats = checkout(self.catalog, context, recovered, s["items"], s["revenue"], s["bought"])
        return VisitOutcome(purchased=items > 0, revenue=revenue, discount_cost=cost, items_bought=items,
                            categories_bought=cats, recovered=recovered.sum(axis=1), clicks=s["clicks"],
                            relevant_shown=s["relevant"], impressions=s["impressions"],
                            disappointments=s["disappointments"], session_length=s["length"],
                            cart=push_cart(cart_left, s["abandoned"]) if n else cart_left)

    def sessions(self, context: VisitContext, keys: np.ndarray) -> dict[str, np.ndarray]:
        """The emulated session figures (the keys of ``SessionVisits.run_keys``); session ``i`` draws
        ``EMULATOR_DRAWS`` uniforms from stream ``keys[i]``, by inverse distribution functions."""
        w, n = self.w, len(context)
        f = self.shown.features(context)
        streams = SessionStreams(n)
        streams.set_keys(np.arange(n), keys)
        u = streams.uniform(EMULATOR_DRAWS, np.arange(n))
        buy = u[:, 0] < _sigmoid(_lin(w["buy"], f))
        items = np.where(buy, 1 + _ppf(stats.poisson, u[:, 1], np.exp(_lin(w["items"], f))), 0)
        z = np.sqrt(-2.0 * np.log1p(-u[:, 2])) * np.cos(2.0 * np.pi * u[:, 3])
        revenue = items * np.exp(_lin(w["price"], f) + w["price_sd"][0] * z)
        logits = w["cat_bias"][None, :] + w["cat_affinity"][0] * context.interest @ self.centroids.T
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        cdf = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
        bought = np.zeros((n, self.catalog.num_categories), dtype=bool)
        for k in range(MAX_CATEGORY_DRAWS):  # one category per item; items past the last draw add none
            has = items > k
            cat = np.minimum((u[:, 4 + k, None] >= cdf).sum(axis=1), self.catalog.num_categories - 1)
            bought[np.flatnonzero(has), cat[has]] = True
        fb = np.column_stack([f, buy])
        mean_extra = np.exp(_lin(w["length"], fb))
        length = 1 + np.floor(np.log1p(-u[:, 8]) / np.log(mean_extra / (1.0 + mean_extra))).astype(np.int64)
        length = np.minimum(length, self.config.max_steps)
        impressions = length * self.config.slate_size
        clicks = _ppf(stats.poisson, u[:, 9], np.exp(_lin(w["clicks"], np.column_stack([fb, np.log(length)]))))
        disappointments = _ppf(stats.binom, u[:, 10], clicks, w["p_dis"][0])
        p_rel = _sigmoid(w["rel"][0] + w["rel"][1] * self.shown.relevant(context.interest))
        relevant = _ppf(stats.binom, u[:, 11], impressions, p_rel)
        abandon = u[:, 12] < _sigmoid(_lin(w["abandon"], fb))
        pick = np.searchsorted(self._abandon_cdf, u[:, 13] * self._abandon_cdf[-1], side="right")
        item = self._abandon_items[np.minimum(pick, len(self._abandon_items) - 1)]
        abandoned = np.full((n, CART_SLOTS), -1, dtype=np.int64)
        abandoned[:, 0] = np.where(abandon, item, -1)
        return {"items": items, "revenue": revenue, "bought": bought, "length": length, "impressions": impressions,
                "clicks": clicks, "disappointments": disappointments, "relevant": relevant, "abandoned": abandoned}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.card, indent=1) + "\n")
        return path


def load_visit_emulator(path: str | Path | None = None, catalog: Catalog | None = None) -> VisitEmulator:
    """The shipped emulator (``ecomsim/assets/visit_emulator.json``) or one saved at ``path``."""
    if path is None:
        text = resources.files("ecomsim").joinpath("assets/visit_emulator.json").read_text()
        source = "ecomsim/assets/visit_emulator.json"
    else:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"visit emulator card {str(p)!r} does not exist (or is not a file)")
        text, source = p.read_text(), str(p)
    try:
        card = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: not a JSON visit emulator card: {exc}") from exc
    return VisitEmulator(card, catalog)


def _ppf(dist, u: np.ndarray, *args) -> np.ndarray:
    """Integer draws of a discrete ``scipy.stats`` distribution from uniforms (inverse distribution function)."""
    return np.maximum(dist.ppf(u, *args), 0).astype(np.int64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _lin(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``w[0] + x . w[1:]``."""
    return w[0] + x @ w[1:]


def random_contexts(sessions, n: int, rng: np.random.Generator, buyers: int = 0) -> tuple[VisitContext, np.ndarray]:
    """Training contexts and session keys: ``n - buyers`` anonymous portraits and ``buyers`` customers selected by a
    first purchase (``ecomsim.lifecycle.entry``, moved to a channel drawn from the traffic mix), all with intent
    offsets ``U(-1.5, 4.5)`` and a random coupon."""
    keys = key_from_generator(rng, n)
    ctx = sessions.anonymous_context(keys)
    if buyers:
        trial = draw_entrants(ShopperPopulation(sessions.catalog, sessions.config.channel), np.zeros(buyers, np.int64),
                              sessions, rng).context
        channel = rng.choice(len(CHANNEL_SHARE), size=buyers, p=CHANNEL_SHARE)
        trial.budget = trial.budget / CHANNEL_BUDGET[trial.channel] * CHANNEL_BUDGET[channel]
        trial.patience = trial.patience / CHANNEL_PATIENCE[trial.channel] * CHANNEL_PATIENCE[channel]
        trial.channel = channel
        rows = np.arange(n - buyers, n)
        for name in ("segment", "channel", "interest", "budget", "price_sensitivity", "patience"):
            getattr(ctx, name)[rows] = getattr(trial, name)
    ctx.intent_offset = rng.uniform(-1.5, 4.5, size=n)
    ctx.discount = rng.choice(np.asarray(COUPONS), size=n)
    return ctx, keys


def fit_emulator(sessions, num_sessions: int, rng: np.random.Generator, buyer_share: float = 0.5,
                 strategy: str = "popularity") -> VisitEmulator:
    """Fit a :class:`VisitEmulator` to ``num_sessions`` real sessions of ``sessions`` (a ``SessionVisits``).

    ``buyer_share`` of the contexts are customers selected by a first purchase: the emulator is used on such
    customers' later visits, where an unselected population would under-represent shoppers who suit the shop.
    """
    ctx, keys = random_contexts(sessions, num_sessions, rng, buyers=int(round(buyer_share * num_sessions)))
    before = sessions.shown_counts.copy()
    s = sessions.run_keys(ctx, keys)
    counts = sessions.shown_counts - before
    top = np.argsort(-counts, kind="stable")[:SHOWN_ITEMS]
    top = top[counts[top] > 0]
    shown = ShownItems(sessions.catalog, top, counts[top])
    f = shown.features(ctx)
    buy = s["items"] > 0
    fb = np.column_stack([f, buy])
    w: dict[str, list[float]] = {}

    def glm(model, x, y, name):
        model.fit(x, y)
        w[name] = [float(np.ravel(model.intercept_)[0])] + [float(v) for v in np.ravel(model.coef_)]

    glm(LogisticRegression(C=100.0, max_iter=5000), f, buy, "buy")
    glm(PoissonRegressor(alpha=1e-6, max_iter=1000), f[buy], s["items"][buy] - 1, "items")
    log_price = np.log(s["revenue"][buy] / s["items"][buy])
    glm(LinearRegression(), f[buy], log_price, "price")
    w["price_sd"] = [float((log_price - _lin(np.asarray(w["price"]), f[buy])).std())]
    glm(PoissonRegressor(alpha=1e-6, max_iter=1000), fb, s["length"] - 1, "length")
    glm(PoissonRegressor(alpha=1e-6, max_iter=1000), np.column_stack([fb, np.log(s["length"])]), s["clicks"], "clicks")
    w["p_dis"] = [float(s["disappointments"].sum() / max(s["clicks"].sum(), 1))]
    abandoned = s["abandoned"][:, 0] >= 0
    glm(LogisticRegression(C=100.0, max_iter=5000), fb, abandoned, "abandon")
    r_shown = shown.relevant(ctx.interest)
    # relevant items per impression: a binomial fit through per-session counts, as a weighted logistic regression
    x_rel = np.concatenate([r_shown, r_shown])[:, None]
    y_rel = np.concatenate([np.ones(len(r_shown)), np.zeros(len(r_shown))])
    sw = np.concatenate([s["relevant"], s["impressions"] - s["relevant"]]).astype(np.float64)
    model = LogisticRegression(C=100.0, max_iter=5000).fit(x_rel, y_rel, sample_weight=sw)
    w["rel"] = [float(model.intercept_[0]), float(model.coef_[0, 0])]
    bias, aff = _fit_categories(ShopperPopulation(sessions.catalog).centroids, ctx.interest[buy], s["bought"][buy])
    w["cat_bias"], w["cat_affinity"] = bias, [aff]
    items, counts_ab = np.unique(s["abandoned"][abandoned, 0], return_counts=True)
    card = {"format": EMULATOR_FORMAT, "features": list(EMULATOR_FEATURES), "config": sessions.config.to_dict(),
            "strategy": strategy, "num_sessions": int(num_sessions), "buyer_share": buyer_share, "weights": w,
            "shown_items": top.tolist(), "shown_share": (counts[top] / counts[top].sum()).tolist(),
            "abandoned_items": items.tolist(), "abandoned_share": (counts_ab / counts_ab.sum()).tolist()}
    return VisitEmulator(card, sessions.catalog)


def _fit_categories(centroids: np.ndarray, interest: np.ndarray, bought: np.ndarray) -> tuple[list[float], float]:
    """Conditional logit of the bought categories on ``<u, centroid_c>``: per-category bias and one slope."""
    aff = interest @ centroids.T  # (n, C)
    y = bought.astype(np.float64)
    c = centroids.shape[0]

    def nll(theta):
        logits = theta[:c][None, :] + theta[c] * aff
        top = logits.max(axis=1, keepdims=True)
        logz = np.log(np.exp(logits - top).sum(axis=1, keepdims=True)) + top
        return -(y * (logits - logz)).sum() + 1e-4 * (theta[:c] ** 2).sum()

    res = optimize.minimize(nll, np.zeros(c + 1), method="L-BFGS-B")
    return [float(v) for v in res.x[:c]], float(res.x[c])
