"""Policies by name: ``random``, ``popularity``, ``click_greedy``, ``greedy``, ``bandit``, ``ppo:PATH``, ``dqn:PATH``,
``maskable_ppo:PATH`` (a masked agent: it gets the env's action masks) and ``offline:PATH`` (an offline-trained
Q-network, ``agents.offline``: its card, e.g. ``runs/cql/card.json``, or the directory holding it)."""

from __future__ import annotations

from typing import Callable

from agents.bandit import LinUCBPolicy
from agents.baselines import BASELINES, Policy
from agents.evaluation import SB3Policy
from ecomsim.errors import suggest

POLICY_NAMES = tuple(BASELINES) + ("bandit",)
MODEL_KINDS = ("ppo", "dqn", "maskable_ppo")
SPEC_FORMS = "ppo:PATH / dqn:PATH / maskable_ppo:PATH / offline:PATH"


class AgentFactory:
    """Fresh :class:`SB3Policy` objects over one loaded agent; ``agent`` is there to check it against an env first."""

    def __init__(self, agent, name: str) -> None:
        self.agent, self.name = agent, name

    def __call__(self) -> SB3Policy:
        return SB3Policy(self.agent, name=self.name)


def policy_factory(spec: str, device: str = "cpu", trust_pickle: bool = False,
                   env_id: str | None = None) -> Callable[[], Policy]:
    """A function returning a fresh policy for ``spec`` (a model file is loaded once).

    ``ppo:PATH`` / ``dqn:PATH`` / ``maskable_ppo:PATH`` load a trained agent (``model.pt`` + ``model.json``, see
    ``agents.model_files``); ``trust_pickle`` also allows a Stable-Baselines3 zip. ``offline:PATH`` loads an
    offline-trained Q-network (``agents.offline``, weights and card: no pickle either way); with ``env_id``, one
    trained for another id is refused.

    Raises:
        ValueError: an unknown name (with a suggestion), a bad ``ppo:``/``dqn:`` spec, or a
            model file that is refused (an SB3 zip without ``trust_pickle``) or invalid.
        FileNotFoundError / IsADirectoryError: the model file does not exist, or is a directory.
    """
    if ":" in spec:
        kind, path = spec.split(":", 1)
        if kind not in MODEL_KINDS + ("offline",) or not path:
            raise ValueError(f"policy must be one of {list(POLICY_NAMES)} or {SPEC_FORMS}, got {spec!r}")
        if kind == "offline":
            from agents.offline import offline_policy_factory  # torch only: d3rlpy is not needed to score it

            return offline_policy_factory(path, env_id)
        from agents.train import load_model

        return AgentFactory(load_model(path, kind, device=device, trust_pickle=trust_pickle), kind)
    if spec == "bandit":
        return LinUCBPolicy
    if spec in BASELINES:
        return BASELINES[spec]
    valid = list(POLICY_NAMES)
    raise ValueError(f"policy must be one of {valid} or {SPEC_FORMS}, got {spec!r}.{suggest(spec, valid)}")
