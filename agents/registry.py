"""Policies by name: ``random``, ``popularity``, ``click_greedy``, ``greedy``, ``bandit``, ``ppo:PATH``, ``dqn:PATH``."""

from __future__ import annotations

from typing import Callable

from agents.bandit import LinUCBPolicy
from agents.baselines import BASELINES, Policy
from agents.evaluation import SB3Policy
from ecomsim.errors import suggest

POLICY_NAMES = tuple(BASELINES) + ("bandit",)
MODEL_KINDS = ("ppo", "dqn")


def policy_factory(spec: str, device: str = "cpu") -> Callable[[], Policy]:
    """A function returning a fresh policy for ``spec`` (a model file is loaded once).

    Raises:
        ValueError: an unknown name (with a suggestion) or a bad ``ppo:``/``dqn:`` spec.
        FileNotFoundError: the model file does not exist.
    """
    if ":" in spec:
        kind, path = spec.split(":", 1)
        if kind not in MODEL_KINDS or not path:
            raise ValueError(f"policy must be one of {list(POLICY_NAMES)} or ppo:PATH / dqn:PATH, got {spec!r}")
        from agents.train import load_model

        model = load_model(path, kind, device=device)
        return lambda: SB3Policy(model, name=kind)
    if spec == "bandit":
        return LinUCBPolicy
    if spec in BASELINES:
        return BASELINES[spec]
    valid = list(POLICY_NAMES)
    raise ValueError(f"policy must be one of {valid} or ppo:PATH / dqn:PATH, got {spec!r}.{suggest(spec, valid)}")
