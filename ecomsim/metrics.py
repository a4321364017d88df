"""Conversion metrics with 95% confidence intervals, from episodes or logs.

Names are the same in code, reports and TensorBoard:

* ``ctr``: clicks / impressions (Wilson interval over impressions);
* ``conversion_rate``: sessions with a purchase / sessions (Wilson interval);
* ``revenue_per_session``: mean revenue per session, currency units (percentile
  bootstrap interval of the mean);
* ``session_length``: mean steps per session (percentile bootstrap interval).

Why a bootstrap for the two means: revenue per session is non-negative and heavily
skewed (most sessions buy nothing, a few buy a lot), so a normal interval on its mean
goes below zero at small session counts (``0.95 [-0.32, 2.22]`` for 300 sessions with
three buyers). A percentile interval is made of resampled means, so it stays inside
the range of the data and follows its skew. The resamples come from a generator
seeded with :data:`BOOTSTRAP_SEED`: the same sessions always give the same interval.

Every TensorBoard tag the project writes is defined here once, grouped by slash as
SB3 and CleanRL do (SB3's own ``rollout/...`` and ``train/...`` tags stay SB3's):

* :data:`TAGS`: ``ecom/<metric>``, the metrics of the sessions an agent trains on;
* :data:`STORE_TAGS`: ``ecom/<metric>``, the store's metrics (``profit_per_day``,
  ``stockout_rate``, ``inventory_turnover``: ``ecomsim.store.metrics``) of the stores an
  agent trains on (``ecomsim/Inventory-v0``);
* :data:`RETENTION_TAGS`: ``ecom/profit_per_customer`` and ``ecom/retention_day_<d>`` (share of the
  customers not churned by day ``d``) of the customers an agent trains on (``ecomsim/Retention-v0``);
* :data:`EVAL_TAGS`: ``eval/<metric>``, the periodic evaluation on fixed seeded sessions;
* :data:`BEHAVIOR_TAGS`: ``behavior/...``, training of the DNN behaviour model;
* :data:`GAN_TAGS`: ``gan/...``, training of the catalog GAN and its fidelity checks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

METRIC_NAMES = ("ctr", "conversion_rate", "revenue_per_session", "session_length")
TAGS = {name: f"ecom/{name}" for name in METRIC_NAMES}
STORE_METRIC_NAMES = ("profit_per_day", "stockout_rate", "inventory_turnover")
STORE_TAGS = {name: f"ecom/{name}" for name in STORE_METRIC_NAMES}
RETENTION_METRIC_NAMES = ("profit_per_customer", "retention_day_90", "retention_day_180", "retention_day_365")
RETENTION_TAGS = {name: f"ecom/{name}" for name in RETENTION_METRIC_NAMES}
EVAL_TAGS = {name: f"eval/{name}" for name in METRIC_NAMES}
BEHAVIOR_TAGS = {
    "train_loss": "behavior/train_loss",
    "val_loss": "behavior/val_loss",
    "val_click_auc": "behavior/val_click_auc",
    "val_purchase_auc": "behavior/val_purchase_auc",
    "val_click_ece": "behavior/val_click_ece",
    "epoch_seconds": "behavior/epoch_seconds",
}
GAN_TAGS = {
    "critic_loss": "gan/critic_loss",
    "generator_loss": "gan/generator_loss",
    "gradient_penalty": "gan/gradient_penalty",
    "wasserstein": "gan/wasserstein_estimate",
    "max_ks": "gan/fidelity/max_ks",
    "category_tv": "gan/fidelity/category_tv",
    "corr_max_diff": "gan/fidelity/corr_max_diff",
    "median_price_max_rel_err": "gan/fidelity/median_price_max_rel_err",
}
Z95 = 1.959963984540054
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 95  # fixed, so an interval is a function of the sessions alone
_DRAWS_PER_CHUNK = 1 << 22  # resampled values held at once (32 MiB of int64 indexes)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% confidence interval and sample size."""

    value: float
    low: float
    high: float
    n: int

    def overlaps(self, other: "Estimate") -> bool:
        return not (self.high < other.low or other.high < self.low)

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.value:.4f} [{self.low:.4f}, {self.high:.4f}]"


def wilson(successes: float, trials: float, z: float = Z95) -> Estimate:
    """Wilson score interval for a proportion."""
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"need 0 <= successes <= trials, got successes={successes}, trials={trials}")
    if trials == 0:
        return Estimate(float("nan"), 0.0, 1.0, 0)
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends: no rounding residue
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return Estimate(float(p), float(low), float(high), int(trials))


def mean_normal(values: np.ndarray, z: float = Z95) -> Estimate:
    """Mean with a normal-approximation interval (fine for thousands of sessions)."""
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    m = float(x.mean())
    se = float(x.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    return Estimate(m, m - z * se, m + z * se, n)


def mean_bootstrap(values: np.ndarray, rng: np.random.Generator | None = None,
                   num_resamples: int = BOOTSTRAP_RESAMPLES) -> Estimate:
    """Mean with a 95% percentile-bootstrap interval (for small or skewed samples).

    Args:
        values: ``(n,)`` the sample.
        rng: the resampling generator (default: one seeded with :data:`BOOTSTRAP_SEED`).
        num_resamples: bootstrap resamples.

    The resampled means are drawn exactly, but cheaply: with few distinct values (session
    lengths) as multinomial counts over them; otherwise the most frequent value (0 for
    revenue) is drawn as one binomial count and only the other draws are resampled.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    n = x.size
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    if not np.isfinite(x).all():
        raise ValueError(f"values must be finite, got {x[~np.isfinite(x)][:3].tolist()} among {n} values")
    rng = np.random.default_rng(BOOTSTRAP_SEED) if rng is None else rng
    means = _resampled_means(x, rng, num_resamples)
    lo, hi = np.quantile(means, [0.025, 0.975])
    m = float(x.mean())
    # the percentile ends and the mean come from different sums: keep their order exact
    return Estimate(m, min(float(lo), m), max(float(hi), m), n)


def _resampled_means(x: np.ndarray, rng: np.random.Generator, num_resamples: int) -> np.ndarray:
    """``(num_resamples,)`` means of samples of ``len(x)`` values drawn from ``x`` with replacement."""
    n = x.size
    vals, counts = np.unique(x, return_counts=True)
    if len(vals) <= 256:
        rows = max(1, _DRAWS_PER_CHUNK // (8 * len(vals)))
        parts = [rng.multinomial(n, counts / n, size=min(rows, num_resamples - a)) @ vals
                 for a in range(0, num_resamples, rows)]
        return np.concatenate(parts) / n
    mode = int(np.argmax(counts))
    rest = x[x != vals[mode]]
    k = rng.binomial(n, counts[mode] / n, size=num_resamples)  # draws of the most frequent value per resample
    sums = k * vals[mode]
    rows = max(1, _DRAWS_PER_CHUNK // n)  # resamples per chunk: at most _DRAWS_PER_CHUNK values drawn at once
    for a in range(0, num_resamples, rows):
        todo = n - k[a : a + rows]
        draws = rest[rng.integers(0, len(rest), size=int(todo.sum()))]
        sums[a : a + rows] += np.bincount(np.repeat(np.arange(len(todo)), todo), weights=draws, minlength=len(todo))
    return sums / n


def session_metrics(
    impressions: np.ndarray,
    clicks: np.ndarray,
    purchases: np.ndarray,
    revenue: np.ndarray,
    length: np.ndarray,
) -> dict[str, Estimate]:
    """The four metrics from per-session totals (one entry per finished session)."""
    impressions = np.asarray(impressions)
    clicks = np.asarray(clicks)
    purchases = np.asarray(purchases)
    n = impressions.shape[0]
    for name, arr in (("clicks", clicks), ("purchases", purchases), ("revenue", revenue), ("length", length)):
        if np.shape(arr) != (n,):
            raise ValueError(f"{name} must have shape ({n},) like impressions, got {np.shape(arr)}")
    return {
        "ctr": wilson(float(clicks.sum()), float(impressions.sum())),
        "conversion_rate": wilson(float((purchases > 0).sum()), float(n)),
        "revenue_per_session": mean_bootstrap(revenue),
        "session_length": mean_bootstrap(length),
    }


def metrics_from_logs(logs) -> dict[str, Estimate]:
    """The four metrics from a log DataFrame (one row per impression; see ``ecomsim.data.schema``).

    Needs columns ``session``, ``step``, ``clicked``, ``purchased``, ``price``.
    """
    missing = [c for c in ("session", "step", "clicked", "purchased", "price") if c not in logs.columns]
    if missing:
        raise ValueError(f"logs lack columns {missing} needed for metrics")
    g = logs.assign(rev=logs["price"] * logs["purchased"]).groupby("session", sort=False)
    per = g.agg(impressions=("clicked", "size"), clicks=("clicked", "sum"), purchases=("purchased", "sum"),
                revenue=("rev", "sum"), length=("step", "nunique"))
    return session_metrics(per["impressions"].to_numpy(), per["clicks"].to_numpy(), per["purchases"].to_numpy(),
                           per["revenue"].to_numpy(), per["length"].to_numpy())


class SessionRecorder:
    """Collects per-session totals from a vector env's ``info`` at episode ends."""

    def __init__(self) -> None:
        self.rows: dict[str, list[np.ndarray]] = {k: [] for k in ("impressions", "clicks", "carts", "purchases", "revenue", "length")}

    def record(self, info: dict, done: np.ndarray) -> int:
        """Store the sessions with ``done`` set; returns how many were stored."""
        done = np.asarray(done, dtype=bool)
        if not done.any():
            return 0
        for key in self.rows:
            self.rows[key].append(np.asarray(info[f"session_{key}"])[done])
        return int(done.sum())

    @property
    def num_sessions(self) -> int:
        return int(sum(len(a) for a in self.rows["length"]))

    def arrays(self, limit: int | None = None) -> dict[str, np.ndarray]:
        out = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in self.rows.items()}
        if limit is not None:
            out = {k: v[:limit] for k, v in out.items()}
        return out

    def metrics(self, limit: int | None = None) -> dict[str, Estimate]:
        a = self.arrays(limit)
        return session_metrics(a["impressions"], a["clicks"], a["purchases"], a["revenue"], a["length"])

    def funnel(self, limit: int | None = None) -> dict[str, float]:
        """Funnel shares: sessions with a cart, and share of carting sessions that bought."""
        a = self.arrays(limit)
        carted = a["carts"] > 0
        bought = a["purchases"] > 0
        return {
            "add_to_cart_rate": float(carted.mean()) if len(carted) else float("nan"),
            "cart_to_purchase": float((bought & carted).sum() / max(carted.sum(), 1)),
            "purchases_per_cart": float(a["purchases"].sum() / max(a["carts"].sum(), 1)),
        }
