"""Store metrics, named as in DESIGN.md: ``profit_per_day``, ``stockout_rate``, ``inventory_turnover``.

Per store, over the whole horizon of a :class:`~ecomsim.store.harness.StoreHistory`:

* ``profit_per_day``: total profit / days, currency units per store-day (profit as
  booked by ``StoreState.close_day``: revenue - cost of goods sold - holding -
  ordering - stock-out cost);
* ``stockout_rate``: units demanded and not served / units demanded (a share of
  demand, not of item-days: it weighs a stock-out by how many shoppers it turned
  away, which is what costs margin; ``nan`` for a store without demand);
* ``inventory_turnover``: cost of goods sold over the horizon / average inventory
  value (stock on hand at unit cost, averaged over the days' closes); not
  annualised (multiply by 365 / days for a yearly figure); ``nan`` when the average
  inventory is 0.

:func:`store_metrics` gives each with a 95% interval over stores (normal interval of
the mean of the per-store values; stores with a ``nan`` value are left out and the
interval's ``n`` says how many counted). The TensorBoard tags are ``ecom/<name>``,
defined with the others in ``ecomsim.metrics``.
"""

from __future__ import annotations

import numpy as np

from ecomsim.metrics import STORE_METRIC_NAMES, Estimate, mean_normal
from ecomsim.store.harness import StoreHistory

__all__ = ["STORE_METRIC_NAMES", "per_store_metrics", "store_metrics"]


def per_store_metrics(history: StoreHistory) -> dict[str, np.ndarray]:
    """Each metric per store, ``(num_stores,)`` float64 (formulas in the module docstring)."""
    demand = history.daily("demand").sum(axis=1).astype(np.float64)
    lost = history.daily("lost").sum(axis=1).astype(np.float64)
    avg_inventory = history.daily("inventory_value").mean(axis=1)
    cogs = history.daily("cogs").sum(axis=1)
    return {
        "profit_per_day": history.daily("profit").mean(axis=1),
        "stockout_rate": np.divide(lost, demand, out=np.full_like(lost, np.nan), where=demand > 0),
        "inventory_turnover": np.divide(cogs, avg_inventory, out=np.full_like(cogs, np.nan), where=avg_inventory > 0),
    }


def store_metrics(history: StoreHistory) -> dict[str, Estimate]:
    """Each metric's mean over stores with its 95% interval (``nan`` stores left out)."""
    return {name: mean_normal(values[np.isfinite(values)]) for name, values in per_store_metrics(history).items()}
