"""sb3-contrib's ``MaskablePPO`` on ecomsim's session ids with inventory: out-of-stock candidates masked.

With ``inventory`` on, ``Recommend-v0`` / ``Slate-v0`` expose ``action_masks()`` (the
candidates in stock, ``ecomsim.sim.stock.candidate_mask``) and the native SB3 VecEnv
answers ``env_method("action_masks")``, the protocol ``MaskablePPO`` reads before every
action. :class:`CandidateMaskablePolicy` is the project's candidate-scoring policy
(``agents.policies.CandidateActor``) on sb3-contrib's ``MaskableActorCriticPolicy``: the
logits of masked candidates are set to ``-inf`` by sb3-contrib's distribution, so a
masked policy never picks a candidate that is out of stock when it chooses.

sb3-contrib is an optional extra (``pip install "ecomsim[masks]"``); this module is
imported only when ``algo="maskable_ppo"`` is asked for, and says how to install it.
"""

from __future__ import annotations

from typing import Any

try:
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
except ImportError as exc:  # an optional extra: say what to install
    raise ImportError("algo='maskable_ppo' needs sb3-contrib: pip install sb3-contrib (or ecomsim[masks])") from exc

import numpy as np

from agents.policies import CandidateActor

__all__ = ["CandidateMaskablePolicy", "MaskablePPO", "predict_masked"]


class CandidateMaskablePolicy(CandidateActor, MaskableActorCriticPolicy):
    """``MaskablePPO`` policy over candidate scores (``agents.policies``; masks from the env's ``action_masks()``)."""


def predict_masked(model: Any, obs: np.ndarray, masks: np.ndarray, deterministic: bool = True) -> np.ndarray:
    """Actions of a maskable model (a ``MaskablePPO`` or a loaded agent) for ``obs`` with ``masks`` ``(n, mask_dim)``."""
    actions, _ = model.predict(obs, deterministic=deterministic, action_masks=masks)
    return actions
