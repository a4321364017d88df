r"""The reference world: a documented parametric model of shoppers.

It is the ground truth of ecomsim: it produces training logs when a user has none,
and it is the yardstick for the sim-to-real gap. For a session ``n`` (portrait from
``ecomsim.shoppers.population``) shown item ``i`` at slot ``k`` on channel ``c``:

**Latent state** (per session, initialised from the portrait): interest ``u`` (unit
vector over the embedding space), patience ``p``, fatigue ``f`` (starts at 0),
purchase intent ``w``. The core adds the observable history: items shown recently
(``rep_i`` = times ``i`` was shown in the last ``HISTORY`` steps) and the
categories bought this session (``sat_i`` = 1 if ``i``'s category was bought).

**Affinity** ``a = <u, e_i>`` in [-1, 1] (``e_i`` the unit-norm item embedding);
**relative popularity** ``r_i = log(popularity_i * num_items)`` (0 for an average item);
**premium look** ``z_i``, the item's log price standardised over the catalog
(``(log price_i - mean) / std``: dearer items look better and draw clicks).

**Attention** (position bias, cascade-free): ``theta_k = (1 + k) ** -eta_c`` with
``eta = (app 1.0, web 0.6, social 0.8)``: small screens lose lower slots fastest.

**Click**::

    p_click = theta_k * sigmoid(b0 + b_aff * a + b_pop * r_i + b_q * (q_i - 0.5) + b_prem * z_i
                                - b_fat * f - b_rep * rep_i - b_sat * sat_i + b_ch[c])

**Cart given click** (price against budget, sensitivity ``s``)::

    p_cart = sigmoid(g0 + g_aff * a + w - g_price * s * log(price_i / budget))

**Purchase given cart** (a price over budget is abandoned more; quality reassures)::

    p_buy = sigmoid(d0 + d_q * (q_i - 0.5) + 0.5 * w - s * d_over * max(0, price_i / budget - 1))

**Leaving** after the step, for outcome level ``o`` (none / click / purchase), with
``p'``, ``f'`` the patience and fatigue after this step's item costs::

    h_o = sigmoid(l0 - l_pat * p' + l_fat * f' + l_o[o])
    h_purchase = 1 - (1 - checkout) * (1 - h_click)

(``h_purchase`` replaces the sigmoid for the purchase level: a buyer who checked out
leaves with probability ``checkout`` on top of the click-level hazard; ``l_o[2]`` is
therefore unused by the equations and kept only so ``l_o`` has one entry per level.)

**Transitions** after the outcomes (mean over the ``m`` items shown):

* item cost: ``p -= 1 / (slots shown) * sum(1 + k_irr * max(0, a_min - a))`` and
  ``f = f_decay * f + mean(phi_irr * max(0, a_min - a) + phi_rep * rep_i)``:
  irrelevant and repeated items tire and exhaust the shopper;
* each click on ``i``: patience refund ``p += k_click * (2 q_i - 0.4)`` (a low-quality
  click-bait item *costs* patience: disappointment) and intent warms up
  ``w += w_click * q_i``; after any click fatigue halves (``f <- 0.5 f``) and interest
  drifts ``u <- normalise(u + rho * (e - u))``, ``e`` the mean embedding of the
  items clicked this step;
* each purchase: intent drops, ``w -= w_after_buy``; and the core marks its category
  ``c`` bought, ``sat_c = 1`` (need satisfied: the shopper stops wanting the category);
* with inventory (``EnvConfig.inventory``), each click on an item with no unit on hand
  (``oos_i = 1``: its page says "out of stock", it cannot be bought) costs patience,
  ``p -= k_oos * oos_i``: disappointment. Without inventory ``oos_i`` is always 0. The
  core's stock rules act on top (``ecomsim.sim.stock``: no cart or purchase on an empty
  shelf, a raised leave hazard in the step of such a click, a lift at low stock).

Why a policy must plan: cheap, popular click-bait maximises the next click and the
next purchase probability but low quality drains patience and intent; repeated or
irrelevant items build fatigue; a satisfied category stops converting. Greedy
click-chasing is therefore not optimal (see the README experiment,
``python scripts/reference_experiment.py``).

**Calibration** (``python scripts/reference_report.py``, popularity policy,
defaults): ``b0`` sets the click rate; ``g0`` the add-to-cart rate (6-8% of
sessions); ``d0`` cart abandonment (~70%, Baymard); ``l0``/``l_pat`` the session
depth (KuaiSim ~14 steps); channel offsets in ``ecomsim.shoppers.population`` give web >
app > social conversion and order value (VWO / Kibo figures in CALIBRATION.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecomsim.shoppers.base import NUM_LEAVE_LEVELS, REACTION_QUANTITIES, Quantity, Reaction, ShopperModel
from ecomsim.sim.state import SimState


@dataclass(frozen=True)
class ReferenceParams:
    """Parameters of the reference world (names as in the module docstring)."""

    eta: tuple[float, float, float] = (1.0, 0.6, 0.8)
    b0: float = -3.4
    b_aff: float = 3.0
    b_pop: float = 0.3
    b_q: float = 0.5
    b_prem: float = 0.8
    b_fat: float = 0.8
    b_rep: float = 1.2
    b_sat: float = 3.0
    b_ch: tuple[float, float, float] = (0.0, 0.0, 0.1)
    g0: float = -2.3
    g_aff: float = 1.0
    g_price: float = 2.0
    d0: float = -0.8
    d_q: float = 1.0
    d_over: float = 1.0
    l0: float = -0.8
    l_pat: float = 0.45
    l_fat: float = 0.5
    l_o: tuple[float, float, float] = (0.0, -1.0, -1.0)
    checkout: float = 0.35
    a_min: float = 0.3
    k_irr: float = 1.5
    k_click: float = 1.0
    f_decay: float = 0.8
    phi_irr: float = 0.6
    phi_rep: float = 0.5
    w_click: float = 0.25
    w_after_buy: float = 1.0
    rho: float = 0.2
    k_oos: float = 1.0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # tanh form: no overflow for large |x|
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class ReferenceWorld(ShopperModel):
    """The parametric reference shopper model (equations in the module docstring)."""

    name = "reference"
    #: the reaction's two, then the latent state (patience in steps of tolerance, intent a logit offset)
    quantities = REACTION_QUANTITIES + (
        Quantity("patience", "patience (latent)", 0.0, 30.0),
        Quantity("fatigue", "fatigue (latent)", 0.0, 3.0),
        Quantity("intent", "purchase intent (latent)", -3.0, 3.0),
    )

    def __init__(self, params: ReferenceParams | None = None) -> None:
        self.params = params or ReferenceParams()

    def bind(self, state: SimState) -> None:
        super().bind(state)
        n, d = state.num_envs, state.catalog.embed_dim
        self.interest = np.zeros((n, d))
        self.patience = np.zeros(n)
        self.fatigue = np.zeros(n)
        self.intent = np.zeros(n)
        cat, table = state.catalog, state.item_table
        self._emb = table.emb
        self._rel_pop = np.log(cat.popularity * cat.num_items)
        self._log_price = table.log_price
        self._price_z = (self._log_price - self._log_price.mean()) / (self._log_price.std() or 1.0)
        self._price = table.price
        self._quality = table.quality
        self._eta = np.asarray(self.params.eta)
        self._b_ch = np.asarray(self.params.b_ch)
        self._l_o = np.asarray(self.params.l_o)

    def memory_bytes(self, embed_dim: int, num_candidates: int, slate_size: int) -> tuple[int, int, int]:
        # held: interest (d floats) and three floats per session, two item columns (rel. popularity, price z);
        # a step: the gathered embeddings (k x d floats) and about 24 (n, k) and 16 (n,) float temporaries
        return 8 * (embed_dim + 3), 8 * (slate_size * (embed_dim + 24) + 16), 8 * 3

    def reset_sessions(self, idx: np.ndarray) -> None:
        pt = self.state.portraits
        self.interest[idx] = pt.interest[idx]
        self.patience[idx] = pt.patience[idx]
        self.fatigue[idx] = 0.0
        self.intent[idx] = pt.intent[idx]

    def describe(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The reaction's two quantities and the latent ``patience`` ``p``, ``fatigue`` ``f``, ``intent`` ``w``."""
        sel = slice(None) if rows is None else rows
        out = self.reaction_summary(rows)
        out.update(patience=self.patience[sel].copy(), fatigue=self.fatigue[sel].copy(), intent=self.intent[sel].copy())
        return out

    # ----------------------------------------------------------------- pieces
    def affinity(self, items: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """``(n, k)`` affinity ``<u, e_i>`` of each session's current interest with each item."""
        u = self.interest if rows is None else self.interest[rows]
        return np.einsum("nkd,nd->nk", self._emb[items], u)

    def _item_costs(self, aff: np.ndarray, rep: np.ndarray, shown: np.ndarray, rows) -> tuple[np.ndarray, np.ndarray]:
        """Patience and fatigue after paying for the shown items (before click effects)."""
        p = self.params
        irr = np.maximum(0.0, p.a_min - aff)
        nshown = np.maximum(shown.sum(axis=1), 1)
        pat = self.patience if rows is None else self.patience[rows]
        fat = self.fatigue if rows is None else self.fatigue[rows]
        cost = ((1.0 + p.k_irr * irr) * shown).sum(axis=1) / nshown
        tire = ((p.phi_irr * irr + p.phi_rep * rep) * shown).sum(axis=1) / nshown
        return pat - cost, p.f_decay * fat + tire

    def reaction(self, items: np.ndarray, positions: np.ndarray, rows: np.ndarray | None = None) -> Reaction:
        p = self.params
        st = self.state
        aff = self.affinity(items, rows)
        rep = st.repeat_counts(items, rows)
        sat = st.category_bought(items, rows)
        ch = st.portraits.channel if rows is None else st.portraits.channel[rows]
        pt = st.portraits
        budget = pt.budget if rows is None else pt.budget[rows]
        sens = pt.price_sensitivity if rows is None else pt.price_sensitivity[rows]
        fat = self.fatigue if rows is None else self.fatigue[rows]
        intent = self.intent if rows is None else self.intent[rows]

        theta = (1.0 + positions[None, :]) ** -self._eta[ch][:, None]
        click_logit = (
            p.b0
            + p.b_aff * aff
            + p.b_pop * self._rel_pop[items]
            + p.b_q * (self._quality[items] - 0.5)
            + p.b_prem * self._price_z[items]
            - p.b_fat * fat[:, None]
            - p.b_rep * rep
            - p.b_sat * sat
            + self._b_ch[ch][:, None]
        )
        click = theta * _sigmoid(click_logit)
        ratio_log = self._log_price[items] - np.log(budget)[:, None]
        cart = _sigmoid(p.g0 + p.g_aff * aff + intent[:, None] - p.g_price * sens[:, None] * ratio_log)
        over = np.maximum(0.0, self._price[items] / budget[:, None] - 1.0)
        buy = _sigmoid(
            p.d0 + p.d_q * (self._quality[items] - 0.5) + 0.5 * intent[:, None] - sens[:, None] * p.d_over * over
        )
        shown = np.ones(items.shape, dtype=bool)
        pat_after, fat_after = self._item_costs(aff, rep, shown, rows)
        base = p.l0 - p.l_pat * pat_after + p.l_fat * fat_after
        leave = _sigmoid(base[:, None] + self._l_o[None, :])
        leave[:, 2] = 1.0 - (1.0 - p.checkout) * (1.0 - leave[:, 1])
        assert leave.shape[1] == NUM_LEAVE_LEVELS
        return Reaction(click=click, cart=cart, purchase=buy, leave=leave)

    def logit_terms(self, items: np.ndarray, positions: np.ndarray,
                    rows: np.ndarray | None = None) -> dict[str, dict[str, np.ndarray]]:
        """The click, cart and purchase equations term by term: ``{head: {term: (n, k)}}``.

        ``click``: the terms of the attraction logit (``b0`` is ``intercept``) and ``position``, the log
        attention ``log theta_k`` (``log p_click = position + log sigmoid(sum of the others)``); ``cart``
        and ``purchase`` (given cart): the terms of their logits. Each head's terms add up exactly to what
        :meth:`reaction` puts through the sigmoid (a test holds it): the reference world's own "why".
        Term names follow the explanation groups of ``ecomsim.explain.groups`` (``intent``: the latent ``w``).
        """
        p = self.params
        st = self.state
        sel = (lambda a: a) if rows is None else (lambda a: a[rows])  # noqa: E731
        aff = self.affinity(items, rows)
        ch = sel(st.portraits.channel)
        budget, sens = sel(st.portraits.budget), sel(st.portraits.price_sensitivity)[:, None]
        fat, intent = sel(self.fatigue)[:, None], sel(self.intent)[:, None]
        full = lambda x: np.broadcast_to(x, items.shape).astype(np.float64)  # noqa: E731
        click = {
            "intercept": full(p.b0), "affinity": p.b_aff * aff, "popularity": p.b_pop * self._rel_pop[items],
            "quality": p.b_q * (self._quality[items] - 0.5), "price": p.b_prem * self._price_z[items],
            "fatigue": full(-p.b_fat * fat), "repeats": -p.b_rep * st.repeat_counts(items, rows),
            "satisfied_need": -p.b_sat * st.category_bought(items, rows), "channel": full(self._b_ch[ch][:, None]),
            "position": full(-self._eta[ch][:, None] * np.log1p(positions[None, :])),
        }
        ratio_log = self._log_price[items] - np.log(budget)[:, None]
        cart = {"intercept": full(p.g0), "affinity": p.g_aff * aff, "intent": full(intent),
                "price_vs_budget": -p.g_price * sens * ratio_log}
        over = np.maximum(0.0, self._price[items] / budget[:, None] - 1.0)
        buy = {"intercept": full(p.d0), "quality": p.d_q * (self._quality[items] - 0.5), "intent": full(0.5 * intent),
               "price_vs_budget": -sens * p.d_over * over}
        return {"click": click, "cart": cart, "purchase": buy}

    def update(self, items, shown, clicked, carted, purchased, rows=None, unavailable=None) -> None:
        """The transitions of the module docstring; ``unavailable`` ``(n, k)`` bool: shown with no stock (inventory)."""
        p = self.params
        sel = slice(None) if rows is None else rows
        aff = self.affinity(items, rows)
        rep = self.state.repeat_counts(items, rows)
        patience, fatigue = self._item_costs(aff, rep, shown, rows)
        q = self._quality[items]
        nclick = clicked.sum(axis=1)
        any_click = nclick > 0
        patience += p.k_click * ((2.0 * q - 0.4) * clicked).sum(axis=1)
        if unavailable is not None:
            patience -= p.k_oos * (clicked & unavailable).sum(axis=1)
        self.patience[sel] = patience
        self.fatigue[sel] = np.where(any_click, 0.5 * fatigue, fatigue)
        intent = self.intent[sel] + p.w_click * (q * clicked).sum(axis=1)
        self.intent[sel] = intent - p.w_after_buy * purchased.sum(axis=1)
        if any_click.any():
            local = np.flatnonzero(any_click)
            e = (self._emb[items[local]] * clicked[local, :, None]).sum(axis=1) / nclick[local, None]
            at = local if rows is None else np.asarray(rows)[local]
            u = self.interest[at]
            u = u + p.rho * (e - u)
            self.interest[at] = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-9)
