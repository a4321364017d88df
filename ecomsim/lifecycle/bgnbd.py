r"""The BG/NBD repeat-buying model (Fader, Hardie & Lee 2005): the reference row of the lifecycle report.

While alive, a customer buys as a Poisson process of rate ``lambda ~ Gamma(r, alpha)``
(shape ``r``, rate ``alpha``, per week); after every repeat purchase she drops out
with probability ``p ~ Beta(a, b)``. For a customer with ``x`` repeat purchases, the
last at ``t_x`` weeks after the first, observed for ``T`` weeks:

**Likelihood**::

    L = B(a, b + x) / B(a, b) * Gamma(r + x) alpha^r / (Gamma(r) (alpha + T)^(r + x))
      + [x > 0] B(a + 1, b + x - 1) / B(a, b) * Gamma(r + x) alpha^r / (Gamma(r) (alpha + t_x)^(r + x))

**Expected repeat purchases** of a new customer in ``t`` weeks::

    E[X(t)] = (a + b - 1) / (a - 1) * [1 - (alpha / (alpha + t))^r 2F1(r, b; a + b - 1; t / (alpha + t))]

**P(alive)** after ``(x, t_x, T)``::

    P(alive) = 1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x))

**Conditional expectation** of purchases in the next ``t`` weeks::

    E[Y(t) | x, t_x, T] = (a + b + x - 1) / (a - 1)
        * [1 - ((alpha + T) / (alpha + T + t))^(r + x) 2F1(r + x, b + x; a + b + x - 1; t / (alpha + T + t))]
        * P(alive)

Published fit on the CDNOW sample's 39 calibration weeks: ``r = 0.243``, ``alpha =
4.414``, ``a = 0.793``, ``b = 2.426`` (log-likelihood -9582.4). ``lifetimes``' fitter
cannot be imported here (its dependencies are not installed), so the likelihood is
written out and maximised with scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

PUBLISHED_CDNOW = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


@dataclass(frozen=True)
class BgNbd:
    """BG/NBD parameters (time unit: weeks)."""

    r: float
    alpha: float
    a: float
    b: float

    def __post_init__(self) -> None:
        for name in ("r", "alpha", "a", "b"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"BG/NBD parameter {name} must be a finite number > 0, got {value!r}")

    def log_likelihood(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """``(N,)`` per-customer log-likelihood (module docstring)."""
        return _loglik(np.log([self.r, self.alpha, self.a, self.b]), x, t_x, T)

    def expected_repeats(self, t: np.ndarray) -> np.ndarray:
        """``E[X(t)]`` for ``t`` weeks (any shape; ``t <= 0`` gives 0)."""
        r, al, a, b = self.r, self.alpha, self.a, self.b
        t = np.maximum(np.asarray(t, dtype=np.float64), 0.0)
        z = t / (al + t)
        return (a + b - 1) / (a - 1) * (1.0 - (al / (al + t)) ** r * special.hyp2f1(r, b, a + b - 1, z))

    def p_alive(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """``(N,)`` probability that each customer is still alive at ``T``."""
        r, al, a, b = self.r, self.alpha, self.a, self.b
        x = np.asarray(x, dtype=np.float64)
        ratio = np.where(x > 0, a / np.maximum(b + x - 1, 1e-12) * ((al + T) / (al + t_x)) ** (r + x), 0.0)
        return 1.0 / (1.0 + ratio)

    def conditional_expected(self, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """``(N,)`` expected purchases in the ``t`` weeks after ``T``, given each customer's history."""
        r, al, a, b = self.r, self.alpha, self.a, self.b
        x = np.asarray(x, dtype=np.float64)
        z = t / (al + T + t)
        body = 1.0 - ((al + T) / (al + T + t)) ** (r + x) * special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        return (a + b + x - 1) / (a - 1) * body * self.p_alive(x, t_x, T)

    def cohort_curve(self, first_day: np.ndarray, weeks: int) -> np.ndarray:
        """``(weeks,)`` expected cumulative repeat purchases of a cohort at the end of each week.

        A customer who first bought on day ``d`` has been observed ``(7 w - 1 - d) / 7`` weeks at the end
        of week ``w`` (same convention as ``T`` in ``ecomsim.data.transactions``).
        """
        days, counts = np.unique(np.asarray(first_day, dtype=np.int64), return_counts=True)
        w = np.arange(1, weeks + 1)
        exposure = (7.0 * w[None, :] - 1.0 - days[:, None]) / 7.0
        return (counts[:, None] * self.expected_repeats(exposure)).sum(axis=0)


def _loglik(log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    r, al, a, b = np.exp(log_params)
    x = np.asarray(x, dtype=np.float64)
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(al)
    first = special.betaln(a, b + x) - special.betaln(a, b) + common - (r + x) * np.log(al + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        second = np.where(
            x > 0,
            special.betaln(a + 1, np.maximum(b + x - 1, 1e-12)) - special.betaln(a, b) + common - (r + x) * np.log(al + t_x),
            -np.inf,
        )
    return np.logaddexp(first, second)


def fit_bgnbd(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, start: BgNbd | None = None) -> tuple[BgNbd, float]:
    """Maximum-likelihood BG/NBD fit; returns the parameters and the total log-likelihood.

    Args:
        x, t_x, T: ``(N,)`` repeat purchases, recency and age in weeks (``ecomsim.data.transactions``).
        start: starting point (default ``r = alpha = a = b = 1``).
    """
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    if not (x.shape == t_x.shape == T.shape) or x.ndim != 1 or len(x) == 0:
        raise ValueError(f"x, t_x and T must be 1-d arrays of one length, got shapes {x.shape}, {t_x.shape}, {T.shape}")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T + 1e-9):
        raise ValueError("x and t_x must be >= 0 and t_x <= T for every customer")
    x0 = np.zeros(4) if start is None else np.log([start.r, start.alpha, start.a, start.b])
    res = optimize.minimize(lambda p: -_loglik(p, x, t_x, T).sum(), x0, method="Nelder-Mead",
                            options={"xatol": 1e-7, "fatol": 1e-7, "maxiter": 20000, "maxfev": 40000})
    res = optimize.minimize(lambda p: -_loglik(p, x, t_x, T).sum(), res.x, method="L-BFGS-B")
    r, al, a, b = np.exp(res.x)
    return BgNbd(r=float(r), alpha=float(al), a=float(a), b=float(b)), float(-res.fun)
