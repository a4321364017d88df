"""Environment configuration: one frozen dataclass, validated on construction.

Every registered id builds an :class:`EnvConfig` from its keyword arguments, so a
misspelt key fails with a "did you mean" suggestion and an out-of-range value names
the field, the value and the valid range. Nothing is clipped silently.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ecomsim.errors import check_choice, check_range, suggest

REWARDS = ("purchase", "revenue", "click", "profit")
MODES = ("recommend", "slate")
USER_MODELS = ("reference", "dnn")
SHOPPER_SAMPLINGS = ("fixed", "per_session")  # ecomsim.shoppers.ensemble
CHANNELS = ("app", "web", "social")
_DEVICE = re.compile(r"cpu|cuda(:\d+)?")


#: options of the learned shoppers alone (the behaviour ensemble's): a reference-world twin of an env drops them
DNN_ONLY_OPTIONS = ("shopper_sampling", "uncertainty_penalty", "ensemble_member", "ensemble")


def reference_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` of an env with the reference world as the shoppers (``user_model="reference"``) and the
    learned shoppers' own options left out: the yardstick an env's policy is scored against."""
    out = {k: v for k, v in options.items() if k not in DNN_ONLY_OPTIONS}
    out["user_model"] = "reference"
    return out


def check_device(device: str) -> str:
    """``device`` when torch can use it (``EnvConfig.device``); else a ``ValueError`` saying why not."""
    if device == "cpu":
        return device
    import torch  # only for a CUDA device: the reference world never needs torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        seen = "no CUDA device (torch.cuda.is_available() is False)" if count == 0 else f"{count} CUDA device(s)"
        raise ValueError(f"device={device!r} needs a CUDA device torch can see; torch {torch.__version__} sees {seen}. "
                         "Use device='cpu' (the default)")
    return device


def _is_number(value: Any, integer: bool = False) -> bool:
    """A Python or numpy number (an integer when ``integer``), not a bool."""
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    return isinstance(value, kinds) and not isinstance(value, (bool, np.bool_))


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number (JSON-friendly); anything else as it is."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class EnvConfig:
    """Options of every ecomsim environment (JSON-friendly, so registered kwargs stay simple).

    Attributes:
        mode: ``"recommend"`` (one item per step, ``Discrete(num_candidates)``) or
            ``"slate"`` (``slate_size`` items per step, ``MultiDiscrete``).
        num_candidates: candidates retrieved for the shopper each step.
        slate_size: items shown per step in slate mode (1 in recommend mode).
        max_steps: steps after which the episode is truncated.
        reward: ``"purchase"`` (purchases this step), ``"revenue"`` (currency units
            bought this step), ``"click"`` (clicks this step) or ``"profit"`` (inventory
            only: what the units bought this step are worth to the store, each its margin
            plus the holding cost its sale saves; ``ecomsim.store.shop``).
        user_model: ``"reference"`` (the parametric reference world) or ``"dnn"``
            (the learned behaviour model, default; weights in ``ecomsim/assets``).
        catalog: ``"default"`` (the shipped GAN-sampled catalog, 2000 items),
            ``"reference"`` (the reference world's own catalog), another shipped name,
            a path to a catalog file saved by ``Catalog.save``, or ``"gan"``: a fresh
            catalog of ``num_items`` drawn from ``catalog_generator`` at every seeded
            ``reset`` (and every ``catalog_refresh`` episodes); same seed, same catalog.
        num_items: if set, use only the first ``num_items`` items of the catalog
            (``catalog="gan"``: the size of each drawn catalog, default 2000).
        catalog_refresh: ``catalog="gan"`` only: ``0`` draws a new catalog at seeded
            resets only; ``K >= 1`` also after every ``K`` unseeded resets. The vector
            env shares one catalog across its sub-envs and changes it only in
            ``reset()``, never at an autoreset (see ``ecomsim.envs``).
        category_mix: ``catalog="gan"`` only: share per category name (JSON dict,
            any positive scale, missing categories get 0); ``None`` keeps the
            generator's training mix.
        price_band: ``catalog="gan"`` only: ``[low, high]`` price range (currency units)
            every drawn item falls in.
        catalog_seed_range: ``catalog="gan"`` only: ``[low, high)``; catalog seeds are
            drawn uniformly from it (disjoint ranges = disjoint catalogs, for shift
            experiments, see ``ecomsim.catalog_source``).
        catalog_generator: ``catalog="gan"`` only: ``"default"`` (the shipped generator)
            or a path to a generator card (``.json``) written by ``scripts/train_gan.py``.
        channel: ``None`` to draw each shopper's channel from the population mix,
            or one of ``app``, ``web``, ``social`` to fix it.
        popular_share, personal_share: shares of the candidate list retrieved from
            the popularity ranking and from the shopper's noisy affinity; the rest
            is uniform random (see ``ecomsim.sim.core`` for the retrieval recipe).
        retrieval_noise: std of the noise on the affinity used by retrieval.
        inventory: ``None`` (default: every item in unlimited supply, the world of every
            published figure) or the store's options, a dict of
            :class:`~ecomsim.store.config.StoreConfig` fields (``{}`` for its defaults):
            per-item stock depleted by purchases and refilled by deliveries after a lead
            time; an out-of-stock item can be shown but not bought; the observation gains
            each candidate's stock state, the env ``action_masks()``. See ``ecomsim.sim.stock``
            (what stock does to shoppers) and ``ecomsim.store.shop`` (the store of a session
            env: its clock, other shoppers, replenishment). Needs a fixed catalog.
        device: where the torch parts run: the DNN shoppers' forward (``user_model="dnn"``)
            and the GAN's catalog draws (``catalog="gan"``): ``"cpu"``, ``"cuda"`` or
            ``"cuda:N"`` (a CUDA device torch can see, else an error when the env is
            built). The core (state, sampling, retrieval, observations) always runs on the
            CPU: it is compiled numba loops. On CUDA the forward is torch's at any batch
            size; runs are reproducible per device, not bit-identical to the CPU's (other
            float32 kernels), and a GAN catalog drawn on CUDA differs from the CPU one for
            the same seed (torch's CUDA generator).
        explain: put each step's top reasons in ``info["why"]``: why the shoppers would click and
            buy each shown item, from the state before the step (``ecomsim.explain.why``; the DNN
            shoppers need the ``explain`` extra, Captum). Off by default: it costs an attribution
            per step; outcomes are the same either way, bit for bit.
        explain_reasons: reasons per item and head in ``info["why"]`` (the largest first).
        shopper_sampling: ``"fixed"`` (default) or ``"per_session"``: each session's DNN shoppers
            are one member of the behaviour ensemble, drawn at reset (domain randomisation;
            ``ecomsim.shoppers.ensemble``).
        uncertainty_penalty: ``None`` (default) or ``lam >= 0``: the reward minus ``lam`` times the
            ensemble members' disagreement on the step, reported in ``info["disagreement"]``
            (MOPO-style; ``0`` reports it without a penalty).
        ensemble_member: ``None`` (default) or ``j``: the DNN shoppers are member ``j`` of the
            behaviour ensemble instead of the shipped model.
        ensemble: ``"default"`` (the shipped ensemble) or a path to an ensemble weights file written
            by ``scripts/train_ensemble.py``; read when one of the three options above is set.
    """

    mode: str = "recommend"
    num_candidates: int = 20
    slate_size: int = 1
    max_steps: int = 50
    reward: str = "purchase"
    user_model: str = "dnn"
    catalog: str = "default"
    num_items: int | None = None
    catalog_refresh: int = 0
    category_mix: dict[str, float] | None = field(default=None, hash=False)
    price_band: list[float] | None = field(default=None, hash=False)
    catalog_seed_range: list[int] | None = field(default=None, hash=False)
    catalog_generator: str = "default"
    channel: str | None = None
    popular_share: float = 0.25
    personal_share: float = 0.5
    retrieval_noise: float = 0.5
    device: str = "cpu"
    explain: bool = False
    explain_reasons: int = 3
    shopper_sampling: str = "fixed"
    uncertainty_penalty: float | None = None
    ensemble_member: int | None = None
    ensemble: str = "default"
    inventory: dict[str, Any] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, MODES)
        self._set("num_candidates", check_range("num_candidates", self.num_candidates, 2, 1000, integer=True))
        self._check_slate_size()
        self._set("max_steps", check_range("max_steps", self.max_steps, 1, 100_000, integer=True))
        check_choice("reward", self.reward, REWARDS)
        check_choice("user_model", self.user_model, USER_MODELS)
        if not isinstance(self.catalog, str) or not self.catalog:
            raise TypeError(f"catalog must be a shipped catalog name or a file path, got {self.catalog!r}")
        if self.num_items is not None:
            self._set("num_items", check_range("num_items", self.num_items, self.num_candidates, 10_000_000, integer=True))
        self._check_gan_options()
        if self.channel is not None:
            check_choice("channel", self.channel, CHANNELS)
        self._set("popular_share", check_range("popular_share", self.popular_share, 0.0, 1.0))
        self._set("personal_share", check_range("personal_share", self.personal_share, 0.0, 1.0))
        if self.popular_share + self.personal_share > 1.0 + 1e-9:
            raise ValueError(
                "popular_share + personal_share must be <= 1, got "
                f"{self.popular_share} + {self.personal_share} = {self.popular_share + self.personal_share}"
            )
        self._set("retrieval_noise", check_range("retrieval_noise", self.retrieval_noise, 0.0, 100.0))
        if not isinstance(self.device, str) or not _DEVICE.fullmatch(self.device):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N' (N a device index), got {self.device!r}")
        self._check_trust_options()
        self._check_inventory()

    @property
    def uses_ensemble(self) -> bool:
        """One of the behaviour-ensemble options is set (the DNN shoppers come from ``ecomsim.shoppers.ensemble``)."""
        return (self.shopper_sampling != "fixed" or self.uncertainty_penalty is not None
                or self.ensemble_member is not None)

    def _check_trust_options(self) -> None:
        if not isinstance(self.explain, bool):
            raise TypeError(f"explain must be True or False, got {self.explain!r} ({type(self.explain).__name__})")
        check_range("explain_reasons", self.explain_reasons, 1, 100, integer=True)
        check_choice("shopper_sampling", self.shopper_sampling, SHOPPER_SAMPLINGS)
        if self.uncertainty_penalty is not None:
            check_range("uncertainty_penalty", self.uncertainty_penalty, 0.0, 1e6)  # NaN fails it too
        if self.ensemble_member is not None:
            check_range("ensemble_member", self.ensemble_member, 0, 1000, integer=True)
            if self.shopper_sampling == "per_session":
                raise ValueError(f"ensemble_member={self.ensemble_member} fixes one member, shopper_sampling="
                                 "'per_session' draws one per session: set one of them")
        if not isinstance(self.ensemble, str) or not self.ensemble:
            raise TypeError(f"ensemble must be 'default' or a path to an ensemble weights file, got {self.ensemble!r}")
        if self.uses_ensemble and self.user_model != "dnn":
            used = [f"{k}={v!r}" for k, v in (("shopper_sampling", self.shopper_sampling),
                                              ("uncertainty_penalty", self.uncertainty_penalty),
                                              ("ensemble_member", self.ensemble_member)) if v not in ("fixed", None)]
            raise ValueError(f"{', '.join(used)} need the learned shoppers (user_model='dnn'), got "
                             f"user_model={self.user_model!r}")
        if self.ensemble != "default" and not self.uses_ensemble:
            raise ValueError(f"ensemble applies with shopper_sampling, uncertainty_penalty or ensemble_member only, "
                             f"got ensemble={self.ensemble!r} with none of them set")

    def _set(self, name: str, value: Any) -> None:
        """Store a checked value (numpy scalars become Python numbers: configs stay JSON-friendly)."""
        object.__setattr__(self, name, value)

    def _check_slate_size(self) -> None:
        m = self.num_candidates
        self._set("slate_size", check_range("slate_size", self.slate_size, 1, None, integer=True))
        if self.slate_size > m:
            from ecomsim.registration import ENV_IDS  # the ids' defaults, named when one of them is the cause

            ids = [i for i, kw in ENV_IDS.items() if kw.get("mode") == self.mode and kw.get("slate_size") == self.slate_size]
            why = (f" ({self.slate_size} is {ids[0]}'s default slate_size: pass slate_size=N with N <= {m}, or "
                   f"num_candidates >= {self.slate_size})") if ids else ""
            raise ValueError(f"slate_size must be in [1, num_candidates={m}], got {self.slate_size}{why}")
        if self.mode == "recommend" and self.slate_size != 1:
            raise ValueError(f"slate_size must be 1 in mode='recommend', got {self.slate_size}; use mode='slate'")


    def _check_inventory(self) -> None:
        if self.inventory is None:
            if self.reward == "profit":
                raise ValueError("reward='profit' needs inventory (the store's costs): pass inventory={} for the "
                                 "store's defaults, or another reward")
            return
        if not isinstance(self.inventory, Mapping):
            raise TypeError(f"inventory must be None or a dict of StoreConfig fields, got {self.inventory!r}")
        if self.catalog == "gan":
            raise ValueError("inventory needs a fixed catalog (the store stocks its items), got catalog='gan'")
        self.store_config()  # every store option checked now, with its field named

    def store_config(self):
        """The :class:`~ecomsim.store.config.StoreConfig` of ``inventory`` (``None`` without inventory)."""
        if self.inventory is None:
            return None
        from ecomsim.store.config import StoreConfig  # the store layer is only needed with inventory

        return StoreConfig.from_kwargs(self.inventory)

    def _check_gan_options(self) -> None:
        self._set("catalog_refresh", check_range("catalog_refresh", self.catalog_refresh, 0, 1_000_000_000, integer=True))
        if not isinstance(self.catalog_generator, str) or not self.catalog_generator:
            raise TypeError(f"catalog_generator must be 'default' or a path to a generator card, got {self.catalog_generator!r}")
        gan_only = {"category_mix": self.category_mix, "price_band": self.price_band,
                    "catalog_seed_range": self.catalog_seed_range}
        if self.catalog != "gan":
            for name, value in gan_only.items():
                if value is not None:
                    raise ValueError(f"{name} applies to catalog='gan' only, got {name}={value!r} with catalog={self.catalog!r}")
            if self.catalog_refresh != 0:
                raise ValueError(f"catalog_refresh applies to catalog='gan' only, got {self.catalog_refresh} with catalog={self.catalog!r}")
        if self.category_mix is not None:
            mix = self.category_mix
            if not isinstance(mix, Mapping) or not mix:
                raise TypeError(f"category_mix must be a non-empty dict category name -> share, got {mix!r}")
            if self.catalog_generator == "default":
                from ecomsim.catalog import REFERENCE_CATEGORIES  # the shipped generator's categories

                valid = list(REFERENCE_CATEGORIES)
                for name in mix:
                    if name not in valid:
                        raise ValueError(f"category_mix has unknown category {name!r}; valid: {valid}.{suggest(str(name), valid)}")
            for name, share in mix.items():
                if not _is_number(share) or not math.isfinite(share) or share < 0:
                    raise ValueError(f"category_mix[{name!r}] must be a finite number >= 0, got {share!r}")
            self._set("category_mix", {name: _plain(share) for name, share in mix.items()})
            mix = self.category_mix
            if sum(mix.values()) <= 0:
                raise ValueError(f"category_mix must have a positive share somewhere, got {dict(mix)}")
        if self.price_band is not None:
            band = self.price_band
            ok = isinstance(band, (list, tuple)) and len(band) == 2 and all(_is_number(v) and math.isfinite(v) for v in band)
            if not ok or not 0 <= band[0] < band[1]:
                raise ValueError(f"price_band must be [low, high] with 0 <= low < high (currency units), got {band!r}")
            self._set("price_band", [_plain(v) for v in band])
        if self.catalog_seed_range is not None:
            rng = self.catalog_seed_range
            ok = isinstance(rng, (list, tuple)) and len(rng) == 2 and all(_is_number(v, integer=True) for v in rng)
            if not ok or not 0 <= rng[0] < rng[1] <= 2**63 - 1:
                raise ValueError(f"catalog_seed_range must be [low, high) integers with 0 <= low < high, got {rng!r}")
            self._set("catalog_seed_range", [_plain(v) for v in rng])

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any] | None = None, *, caller: str | None = None,
                    **overrides: Any) -> "EnvConfig":
        """Build a config from user keyword arguments; an unknown key is a ``TypeError`` in Python's own words
        (``"EcomEnv.__init__() got an unexpected keyword argument 'x'"``, ``caller`` naming the callable, by
        default ``EnvConfig.__init__()``: tools such as TorchRL retry without a keyword on exactly that
        wording) followed by a did-you-mean hint and the valid keys."""
        merged = dict(kwargs or {})
        merged.update(overrides)
        names = [f.name for f in dataclasses.fields(cls)]
        for key in merged:
            if key not in names:
                raise TypeError(f"{caller or cls.__name__ + '.__init__()'} got an unexpected keyword argument "
                                f"{key!r}.{suggest(key, names)} Valid keys: {names}")
        return cls(**merged)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
