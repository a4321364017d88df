"""The store: stock per item, orders that arrive after a lead time, the day's accounts, and replenishment.

Demand comes from shoppers: a :class:`~ecomsim.store.demand.DemandSource` sells each
day's demand through the store, either by replaying purchases recorded from real
sessions of the env (``ecomsim.store.sessions``) or by running the day's sessions on the
batched core with the store's stock (``ecomsim.store.traffic``, ``ecomsim/Inventory-v0``).
docs/inventory.md has the whole story.

Modules: ``config`` (:class:`StoreConfig`, :class:`TrafficPlan`), ``items`` (item
economics and ordering groups), ``state`` (:class:`StoreState`: stock, pipeline,
sales, accounts), ``demand`` (demand sources, substitution), ``forecast``
(moving-average and behaviour-model forecasters, MAPE), ``policies`` (never order,
base stock, (s, S)), ``tuning`` ((s, S) search), ``harness`` (the daily loop),
``metrics`` (``profit_per_day``, ``stockout_rate``, ``inventory_turnover``),
``sessions`` (demand recorded from env sessions).
"""

from ecomsim.store.config import StoreConfig, TrafficPlan
from ecomsim.store.demand import DemandSource, GroupSubstitution, NoSubstitution, ReplayDemand, SubstitutionRule
from ecomsim.store.forecast import (
    BehaviorForecaster,
    DemandForecaster,
    ForecastError,
    MovingAverageForecaster,
    evaluate_forecaster,
    forecast_error,
)
from ecomsim.store.harness import StoreHistory, StoreSimulation
from ecomsim.store.items import ItemGroups, StoreItems
from ecomsim.store.metrics import STORE_METRIC_NAMES, per_store_metrics, store_metrics
from ecomsim.store.policies import BaseStock, NeverOrder, ReplenishmentPolicy, SsPolicy
from ecomsim.store.state import DayAccount, StoreState

__all__ = [
    "BaseStock", "BehaviorForecaster", "DayAccount", "DemandForecaster", "DemandSource", "ForecastError",
    "GroupSubstitution", "ItemGroups", "MovingAverageForecaster", "NeverOrder", "NoSubstitution", "ReplayDemand",
    "ReplenishmentPolicy", "STORE_METRIC_NAMES", "SsPolicy", "StoreConfig", "StoreHistory", "StoreItems",
    "StoreSimulation", "StoreState", "SubstitutionRule", "TrafficPlan", "evaluate_forecaster", "forecast_error",
    "per_store_metrics", "store_metrics",
]
