"""Lifecycle logs of the reference world and the training of the return-time model on them.

:func:`lifecycle_logs` follows customers of ``ecomsim/Retention-v0`` (the reference
lifecycle, visits as sessions of ``user_model``) from their first purchase to the
horizon or churn under a logging policy, and records one row per decision: what a
shop sees then (:data:`~ecomsim.lifecycle.return_model.RETURN_FEATURES`), what it
decided (:data:`~ecomsim.lifecycle.return_model.DECISION_FEATURES`), when the next
visit came (or how many days were watched without one) and, for the yardstick, the
reference world's Bayes-optimal churn risk. The ``random`` logging policy draws every
action uniformly (coupons and messages of every kind appear in the logs); ``never``
sends nothing and ranks by popularity (what :func:`churn_auc` scores on).

:func:`train_return_model` fits :class:`~ecomsim.lifecycle.return_model.ReturnNet` by
the censored hazard likelihood with Adam, early stopping on a validation split of
customers, all randomness from ``seed``. :func:`churn_auc` is the issue's churn
figure: on held-out customers, the AUC of the learned churn risk for "no visit in
the next ``days`` days" next to the AUC of the Bayes-optimal risk.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ecomsim.lifecycle.retention_batch import CHURN_RISK_INDEX, RetentionBatch
from ecomsim.lifecycle.retention_config import RetentionConfig
from ecomsim.lifecycle.return_model import (RETURN_BINS, ReturnModel, ReturnNet, decision_features, hazard_nll)
from ecomsim.shoppers.training import auc
from ecomsim.sim.streams import key_from_generator

LOGGING_POLICIES = ("random", "never")


@dataclass
class LifecycleLogs:
    """One row per decision (``n`` rows).

    Attributes:
        customer: ``(n,)`` int64 customer index (splits go by customer).
        features: ``(n, len(RETURN_FEATURES))`` float32; ``decision``: ``(n, len(DECISION_FEATURES))`` float32.
        gap: ``(n,)`` int64 days to the next visit, ``-1`` when none came within the window.
        window: ``(n,)`` int64 days watched after the decision (to the horizon).
        bayes_risk: ``(n,)`` the reference world's churn risk ``P(no visit in churn_days)`` at the decision.
        churn_days: the window of ``bayes_risk``.
    """

    customer: np.ndarray
    features: np.ndarray
    decision: np.ndarray
    gap: np.ndarray
    window: np.ndarray
    bayes_risk: np.ndarray
    churn_days: int = 30

    def __len__(self) -> int:
        return len(self.gap)

    def take(self, mask: np.ndarray) -> "LifecycleLogs":
        arrays = {f.name: getattr(self, f.name)[mask] for f in dataclasses.fields(self) if f.name != "churn_days"}
        return LifecycleLogs(**arrays, churn_days=self.churn_days)

    @classmethod
    def concat(cls, parts: list["LifecycleLogs"]) -> "LifecycleLogs":
        """One log of several (same ``churn_days``); customer ids are renumbered so each part keeps its own."""
        if len({p.churn_days for p in parts}) != 1:
            raise ValueError(f"logs to join must share churn_days, got {[p.churn_days for p in parts]}")
        offset, ids = 0, []
        for p in parts:
            ids.append(p.customer + offset)
            offset += int(p.customer.max()) + 1 if len(p) else 0
        arrays = {f.name: np.concatenate([getattr(p, f.name) for p in parts])
                  for f in dataclasses.fields(cls) if f.name not in ("customer", "churn_days")}
        return cls(customer=np.concatenate(ids), **arrays, churn_days=parts[0].churn_days)

    def targets(self, bins: tuple[int, ...] = RETURN_BINS) -> tuple[np.ndarray, np.ndarray]:
        """``event_bin`` ``(n,)`` (``-1``: censored) and ``observed_bins`` ``(n,)`` of :func:`hazard_nll`."""
        edges = np.asarray(bins)
        seen = self.gap >= 1
        event = np.where(seen, np.searchsorted(edges, np.maximum(self.gap, 1), side="left"), -1)
        full = np.searchsorted(edges, self.window, side="right")  # bins ending inside the window
        return event.astype(np.int64), np.where(seen, event, full).astype(np.int64)

    def churned_within(self, days: int) -> tuple[np.ndarray, np.ndarray]:
        """``(labels, known)``: no visit in the next ``days`` days, and whether the window covered them."""
        known = (self.window >= days) | ((self.gap >= 1) & (self.gap <= days))
        return ~((self.gap >= 1) & (self.gap <= days)), known


def lifecycle_logs(customers: int, seed: int, policy: str = "random", user_model: str = "reference",
                   config: RetentionConfig | None = None) -> LifecycleLogs:
    """Log ``customers`` customers' lives under ``policy`` (``LOGGING_POLICIES``), all draws from ``seed``.

    ``config`` (default: ``RetentionConfig(user_model=user_model)``) sets the horizon, the levers and the churn
    window of ``bayes_risk``; its ``churn_model`` is forced to ``"reference"`` (the logs record the Bayes risk).
    """
    if policy not in LOGGING_POLICIES:
        raise ValueError(f"policy must be one of {list(LOGGING_POLICIES)}, got {policy!r}")
    if isinstance(customers, bool) or not isinstance(customers, int) or customers < 1:
        raise ValueError(f"customers must be a positive integer, got {customers!r}")
    cfg = dataclasses.replace(config or RetentionConfig(user_model=user_model), churn_model="reference")
    rng = np.random.default_rng(seed)
    batch = RetentionBatch(cfg, customers)
    batch.reset_rows(np.arange(customers), key_from_generator(rng, customers))
    never = cfg.encode(0, 0, cfg.strategies.index("popularity") if "popularity" in cfg.strategies else 0)
    active = np.ones(customers, dtype=bool)
    parts: list[dict[str, np.ndarray]] = []
    while active.any():
        rows = np.flatnonzero(active)
        obs = batch.observe(rows)
        acts = (rng.integers(0, cfg.num_actions, len(rows)) if policy == "random"
                else np.full(len(rows), never, dtype=np.int64))
        offer, days = batch.decision(acts)
        day = batch.customers.last_day[rows]
        _, term, info = batch.step(rows, acts)
        parts.append({"customer": rows, "features": obs[:, :CHURN_RISK_INDEX],
                      "decision": decision_features(offer, days).astype(np.float32),
                      "gap": np.where(info["visited"], info["days_to_next_visit"], -1),
                      "window": cfg.horizon_days - day, "bayes_risk": obs[:, CHURN_RISK_INDEX].astype(np.float64)})
        active[rows[term]] = False
    return LifecycleLogs(**{k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, churn_days=cfg.churn_days)


@dataclass(frozen=True)
class ReturnTrainConfig:
    """Training of the return-time model.

    Attributes:
        hidden: hidden width; epochs: at most this many passes; patience: epochs without a better validation loss
        before stopping; batch_size, lr: Adam's; val_share: share of customers held out for early stopping;
        seed: the split, the initialisation and the batch order.
    """

    hidden: int = 64
    epochs: int = 60
    patience: int = 5
    batch_size: int = 1024
    lr: float = 2e-3
    val_share: float = 0.15
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("hidden", "epochs", "patience", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not 0 < self.lr < 1:
            raise ValueError(f"lr must be in (0, 1), got {self.lr!r}")
        if not 0 < self.val_share < 1:
            raise ValueError(f"val_share must be in (0, 1), got {self.val_share!r}")


def _tensors(logs: LifecycleLogs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    event, observed = logs.targets()
    x = torch.from_numpy(np.concatenate([logs.features, logs.decision], axis=1).astype(np.float32))
    return x, torch.from_numpy(event), torch.from_numpy(observed)


def train_return_model(logs: LifecycleLogs, cfg: ReturnTrainConfig = ReturnTrainConfig()
                       ) -> tuple[ReturnModel, dict[str, float]]:
    """Fit a :class:`ReturnNet` on ``logs``; returns the model (best validation epoch) and a summary
    (``train_nll``, ``val_nll``, ``epochs``, ``rows``, ``customers``)."""
    if len(logs) == 0:
        raise ValueError("logs hold no decision rows; log at least one customer")
    gen = np.random.default_rng(cfg.seed)
    ids = np.unique(logs.customer)
    val_ids = gen.choice(ids, size=max(1, int(round(cfg.val_share * len(ids)))), replace=False)
    is_val = np.isin(logs.customer, val_ids)
    if is_val.all():
        raise ValueError(f"val_share {cfg.val_share} leaves no training customer out of {len(ids)}")
    tr, va = _tensors(logs.take(~is_val)), _tensors(logs.take(is_val))
    torch.manual_seed(cfg.seed)
    net = ReturnNet(cfg.hidden)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    tgen = torch.Generator().manual_seed(cfg.seed)
    best, best_state, wait, epochs, train_loss = float("inf"), None, 0, 0, float("nan")
    for epoch in range(cfg.epochs):
        net.train()
        order = torch.randperm(len(tr[0]), generator=tgen)
        total = 0.0
        for start in range(0, len(order), cfg.batch_size):
            i = order[start:start + cfg.batch_size]
            loss = hazard_nll(net(tr[0][i]), tr[1][i], tr[2][i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(i)
        net.eval()
        with torch.no_grad():
            val = float(hazard_nll(net(va[0]), va[1], va[2]))
        epochs = epoch + 1
        if val < best - 1e-5:
            best, wait, train_loss = val, 0, total / len(order)
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        else:
            wait += 1
            if wait >= cfg.patience:
                break
    assert best_state is not None
    net.load_state_dict(best_state)
    summary = {"train_nll": train_loss, "val_nll": best, "epochs": float(epochs), "rows": float(len(logs)),
               "customers": float(len(ids))}
    return ReturnModel(net, {"bins": list(RETURN_BINS), "hidden": cfg.hidden}), summary


def churn_auc(model: ReturnModel, logs: LifecycleLogs) -> dict[str, float]:
    """AUC of the learned and of the Bayes-optimal churn risk for "no visit in the next ``logs.churn_days`` days" on the
    decisions of ``logs`` whose window covers them (``logs`` from the ``never`` policy: no coupon, no message,
    the situation both risks describe). Keys ``auc_learned``, ``auc_bayes``, ``ratio``, ``rows``, ``churn_rate``."""
    days = logs.churn_days
    labels, known = logs.churned_within(days)
    held = logs.take(known)
    y = labels[known]
    learned = model.churn_risk(held.features, days)
    a, b = auc(y, learned), auc(y, held.bayes_risk)
    return {"auc_learned": a, "auc_bayes": b, "ratio": a / b, "rows": float(len(y)), "churn_rate": float(y.mean())}


#: the issue's churn target: the learned risk's AUC at least this share of the Bayes-optimal risk's
CHURN_AUC_TARGET = 0.95


def observable_ceiling(train: LifecycleLogs, test: LifecycleLogs, seed: int = 0) -> float:
    """AUC on ``test`` of gradient-boosted trees fit on ``train`` straight to the churn label, from the same
    features: an estimate of how well anything can rank churners from what the shop sees (both logs from the
    ``never`` policy), to read the return model's AUC against (the Bayes risk also sees the hidden state)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    def labelled(logs: LifecycleLogs) -> tuple[np.ndarray, np.ndarray]:
        y, known = logs.churned_within(logs.churn_days)
        return logs.features[known], y[known]

    x, y = labelled(train)
    gbm = HistGradientBoostingClassifier(max_iter=500, learning_rate=0.05, early_stopping=True, random_state=seed)
    xt, yt = labelled(test)
    return auc(yt, gbm.fit(x, y).predict_proba(xt)[:, 1])


def churn_report(customers: int = 5000, seed: int = 1, model: ReturnModel | None = None,
                 user_model: str = "reference", ceiling_customers: int = 0) -> dict[str, float | bool]:
    """The ``churn.*`` figures of ``scripts/lifecycle_report.py``: :func:`churn_auc` of ``model`` (default: the
    shipped one) on ``customers`` held-out customers logged with ``seed`` under the ``never`` policy, and with
    ``ceiling_customers`` > 0 the :func:`observable_ceiling` fit on that many others (seed ``seed + 100``)."""
    from ecomsim.lifecycle.return_model import load_return_model

    model = model or load_return_model()
    logs = lifecycle_logs(customers, seed, "never", user_model)
    figures = churn_auc(model, logs)
    out: dict[str, float | bool] = {f"churn.{k}": v for k, v in figures.items()}
    out["churn.days"] = float(logs.churn_days)
    out["churn.customers"] = float(customers)
    out["churn.target.auc_ratio"] = figures["ratio"] >= CHURN_AUC_TARGET
    if ceiling_customers:
        ceiling = observable_ceiling(lifecycle_logs(ceiling_customers, seed + 100, "never", user_model), logs)
        out["churn.auc_observable_ceiling"] = ceiling
        out["churn.ratio_to_ceiling"] = figures["auc_learned"] / ceiling
    return out
