"""Options of ``ecomsim/Inventory-v0`` (:class:`InventoryConfig`): the shoppers, the traffic's recommender, the action.

Keyword arguments are flat: the env's own fields below and every
:class:`~ecomsim.store.config.StoreConfig` field (traffic, costs, lead times, grouping,
stock effects), e.g. ``gym.make("ecomsim/Inventory-v0", sessions_per_day=100,
lead_time_days=5, user_model="reference")``. A misspelt key fails with a "did you mean"
over both sets; every value is checked on construction, with the field named.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from ecomsim.config import USER_MODELS
from ecomsim.errors import check_choice, check_range, suggest
from ecomsim.store.config import StoreConfig
from ecomsim.store.traffic import RECOMMENDERS

FORECASTERS = ("moving_average", "behavior")
ACTIONS = ("ladder", "units")
# order-up-to levels in days of planned demand: "order nothing", then two days to six weeks; with the
# default minimum lot (half the level) rung S reorders at S/2 days, so the rungs span reorder points from
# one day (about nothing against the 3-day lead time) to three weeks (room for item-level stock-outs hidden
# in a group's total: the (s, S) tuned on sessions reorders at about two weeks; docs/inventory.md)
ORDER_LADDER = (0, 2, 4, 7, 10, 14, 21, 28, 35, 42)


@dataclass(frozen=True)
class InventoryConfig:
    """The env's own options (JSON-friendly); ``store`` holds the :class:`StoreConfig` fields given.

    Attributes:
        user_model: the shoppers, ``"dnn"`` (the learned behaviour model) or ``"reference"``.
        catalog: the catalog (a shipped name or a file, as ``EnvConfig.catalog``); the store stocks its items.
        num_items: use only the first ``num_items`` items of the catalog (``None``: all).
        recommender: what the day's sessions are shown (``ecomsim.store.traffic.RECOMMENDERS``).
        session_batch: sessions run side by side on the core, >= 1 (128: the DNN's compiled
            forward is used up to 128 rows per step, faster than torch on a CPU).
        probe_rows: sessions per step whose purchase probability feeds the behaviour forecast, >= 0.
        forecaster: the forecast in the observation and behind the split of group orders
            over items: ``"moving_average"`` or ``"behavior"``.
        action: ``"ladder"`` (``MultiDiscrete([len(order_ladder)] * num_groups)``, an
            order-up-to level per group in days of planned demand) or ``"units"`` (a ``Box``
            of units per group).
        order_ladder: the ladder, whole days >= 0, increasing.
        min_order_share: a ladder order is placed only when it is at least this share of
            its level, in [0, 1) (a minimum lot: every order pays the fixed cost, so topping
            up a unit a day is never worth it). Default 0.5: rung ``S`` reorders when the
            position has fallen to half of ``S``, so holding one rung is an ``(S/2, S)`` policy.
        behavior_halflife: half-life, days, of the behaviour forecast's average of daily purchase rates (> 0).
        store: :class:`StoreConfig` keyword arguments.
    """

    user_model: str = "dnn"
    catalog: str = "default"
    num_items: int | None = None
    recommender: str = "stock_aware"
    session_batch: int = 128
    probe_rows: int = 16
    forecaster: str = "moving_average"
    action: str = "ladder"
    order_ladder: list[int] = field(default_factory=lambda: list(ORDER_LADDER), hash=False)
    min_order_share: float = 0.5
    behavior_halflife: float = 7.0
    store: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        check_choice("user_model", self.user_model, USER_MODELS)
        if not isinstance(self.catalog, str) or not self.catalog or self.catalog == "gan":
            raise ValueError(f"catalog must be a shipped catalog name or a file (the store needs a fixed catalog), "
                             f"got {self.catalog!r}")
        if self.num_items is not None:
            check_range("num_items", self.num_items, 20, 10_000_000, integer=True)
        check_choice("recommender", self.recommender, RECOMMENDERS)
        check_range("session_batch", self.session_batch, 1, 1_000_000, integer=True)
        check_range("probe_rows", self.probe_rows, 0, 1_000_000, integer=True)
        check_choice("forecaster", self.forecaster, FORECASTERS)
        check_choice("action", self.action, ACTIONS)
        ladder = self.order_ladder
        if (not isinstance(ladder, (list, tuple)) or len(ladder) < 2
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in ladder)
                or any(b <= a for a, b in zip(ladder, ladder[1:]))):
            raise ValueError(f"order_ladder must be at least 2 increasing whole days >= 0, got {ladder!r}")
        check_range("min_order_share", self.min_order_share, 0.0, 0.999)
        check_range("behavior_halflife", self.behavior_halflife, 1e-3, 1e6)
        if not isinstance(self.store, Mapping):
            raise TypeError(f"store must be a dict of StoreConfig fields, got {self.store!r}")
        self.store_config()

    def store_config(self) -> StoreConfig:
        return StoreConfig.from_kwargs(self.store)

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any] | None = None, **overrides: Any) -> "InventoryConfig":
        """Split flat keyword arguments into the env's fields and ``store`` (unknown keys: an error with a suggestion)."""
        merged = dict(kwargs or {})
        merged.update(overrides)
        own = [f.name for f in dataclasses.fields(cls) if f.name != "store"]
        store_fields = [f.name for f in dataclasses.fields(StoreConfig)]
        store = dict(merged.pop("store", None) or {})
        for key in list(merged):
            if key in store_fields:
                store[key] = merged.pop(key)
            elif key not in own:
                valid = own + store_fields
                raise TypeError(f"unknown Inventory-v0 option {key!r}.{suggest(key, valid)} Valid keys: {valid}")
        return cls(**merged, store=store)

    def to_dict(self) -> dict[str, Any]:
        """Flat keyword arguments that rebuild this config (``from_kwargs``)."""
        d = dataclasses.asdict(self)
        return {**{k: v for k, v in d.items() if k != "store"}, **d["store"]}
