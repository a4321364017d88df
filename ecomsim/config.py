"""Environment configuration: one frozen dataclass, validated on construction.

Every registered id builds an :class:`EnvConfig` from its keyword arguments, so a
misspelt key fails with a "did you mean" suggestion and an out-of-range value names
the field, the value and the valid range. Nothing is clipped silently.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any, Mapping

REWARDS = ("purchase", "revenue", "click")
MODES = ("recommend", "slate")
USER_MODELS = ("reference", "dnn")
CHANNELS = ("app", "web", "social")


def suggest(name: str, valid: list[str] | tuple[str, ...]) -> str:
    """Return a ' Did you mean ...?' hint for a misspelt name, or ''."""
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_choice(field: str, value: Any, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"{field} must be one of {list(valid)}, got {value!r}.{suggest(str(value), valid)}")


def check_range(field: str, value: Any, low: float, high: float, *, integer: bool = False) -> None:
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        raise TypeError(f"{field} must be {kind} in [{low}, {high}], got {value!r} ({type(value).__name__})")
    if not low <= value <= high:
        raise ValueError(f"{field} must be in [{low}, {high}], got {value!r}")


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
            bought this step) or ``"click"`` (clicks this step).
        user_model: ``"reference"`` (the parametric reference world) or ``"dnn"``
            (the learned behaviour model, once its weights ship).
        catalog: ``"reference"`` (the shipped reference-world catalog), another
            shipped name, or a path to a catalog file saved by ``Catalog.save``.
        num_items: if set, use only the first ``num_items`` items of the catalog.
        channel: ``None`` to draw each shopper's channel from the population mix,
            or one of ``app``, ``web``, ``social`` to fix it.
        popular_share, personal_share: shares of the candidate list retrieved from
            the popularity ranking and from the shopper's noisy affinity; the rest
            is uniform random (see ``ecomsim.core`` for the retrieval recipe).
        retrieval_noise: std of the noise on the affinity used by retrieval.
        device: ``"cpu"`` (numpy core); other values are reserved for torch cores.
    """

    mode: str = "recommend"
    num_candidates: int = 20
    slate_size: int = 1
    max_steps: int = 50
    reward: str = "purchase"
    user_model: str = "reference"
    catalog: str = "reference"
    num_items: int | None = None
    channel: str | None = None
    popular_share: float = 0.25
    personal_share: float = 0.5
    retrieval_noise: float = 0.5
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, MODES)
        check_range("num_candidates", self.num_candidates, 2, 1000, integer=True)
        check_range("slate_size", self.slate_size, 1, self.num_candidates, integer=True)
        if self.mode == "recommend" and self.slate_size != 1:
            raise ValueError(f"slate_size must be 1 in mode='recommend', got {self.slate_size}; use mode='slate'")
        check_range("max_steps", self.max_steps, 1, 100_000, integer=True)
        check_choice("reward", self.reward, REWARDS)
        check_choice("user_model", self.user_model, USER_MODELS)
        if not isinstance(self.catalog, str) or not self.catalog:
            raise TypeError(f"catalog must be a shipped catalog name or a file path, got {self.catalog!r}")
        if self.num_items is not None:
            check_range("num_items", self.num_items, self.num_candidates, 10_000_000, integer=True)
        if self.channel is not None:
            check_choice("channel", self.channel, CHANNELS)
        check_range("popular_share", self.popular_share, 0.0, 1.0)
        check_range("personal_share", self.personal_share, 0.0, 1.0)
        if self.popular_share + self.personal_share > 1.0 + 1e-9:
            raise ValueError(
                "popular_share + personal_share must be <= 1, got "
                f"{self.popular_share} + {self.personal_share} = {self.popular_share + self.personal_share}"
            )
        check_range("retrieval_noise", self.retrieval_noise, 0.0, 100.0)
        check_choice("device", self.device, ("cpu",))

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any] | None = None, **overrides: Any) -> "EnvConfig":
        """Build a config from user keyword arguments, rejecting unknown keys with a suggestion."""
        merged = dict(kwargs or {})
        merged.update(overrides)
        names = [f.name for f in dataclasses.fields(cls)]
        for key in merged:
            if key not in names:
                raise TypeError(f"unknown config key {key!r}.{suggest(key, names)} Valid keys: {names}")
        return cls(**merged)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
