"""Who will buy again: the lifecycle model's activity score for real customers, learned from simulated ones.

The lifecycle state (visit rate, churn propensity, loyalty, needs) is hidden, so
the model's probability that a customer with a given calibration-window history
buys again in the holdout window has no closed form. It is computed the way a
simulator can: simulate a cohort through both windows, summarise each simulated
customer's calibration window exactly as the real ones are summarised (repeat
transactions ``x``, recency ``t_x``, age ``T``, weeks since the last purchase),
and fit a classifier of "any repeat purchase in the holdout" on them
(:class:`ActivityScore`, gradient-boosted trees with monotone constraints where the
direction is known: more purchases and a more recent last one never lower the
score). Applied to the real customers' calibration windows, its probability is the
model's forecast; its AUC against what they really did in the holdout is reported
next to BG/NBD's ``P(alive)``.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from ecomsim.data.transactions import RepeatBuying

ACTIVITY_FEATURES = ("x", "t_x", "T", "weeks_quiet")


def activity_features(s: RepeatBuying) -> np.ndarray:
    """``(N, 4)`` calibration-window summary per customer: ``x``, ``t_x``, ``T`` and ``T - t_x`` (weeks)."""
    return np.column_stack([s.x, s.t_x, s.T, s.T - s.t_x]).astype(np.float64)


class ActivityScore:
    """P(any repeat purchase in the holdout | calibration window), fitted on a simulated cohort.

    Args:
        simulated: the simulated cohort's summary (both windows).
        seed: seed of the tree learner (its only randomness).
    """

    def __init__(self, simulated: RepeatBuying, seed: int = 0) -> None:
        if simulated.holdout_days < 1:
            raise ValueError("the simulated cohort needs a holdout window to learn from, got holdout_days=0")
        y = simulated.x_holdout > 0
        if y.all() or not y.any():
            raise ValueError(f"the simulated cohort has {int(y.sum())} of {len(y)} customers active in the holdout; "
                             "both outcomes are needed to learn a score")
        # +1: more repeat purchases, later last purchase -> more likely active; -1: longer quiet -> less
        self.model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                                    monotonic_cst=[1, 1, 0, -1], early_stopping=False,
                                                    random_state=seed)
        self.model.fit(activity_features(simulated), y)

    def predict(self, cohort: RepeatBuying) -> np.ndarray:
        """``(N,)`` probability that each customer of ``cohort`` buys again in the holdout window."""
        return self.model.predict_proba(activity_features(cohort))[:, 1]


def holdout_auc(score: np.ndarray, cohort: RepeatBuying) -> float:
    """AUC of ``score`` ``(N,)`` for "any repeat purchase in the holdout window" of ``cohort``."""
    return float(roc_auc_score(cohort.x_holdout > 0, score))
