"""SB3 policies that score every candidate with one shared network.

The observation is ``[context (C), candidate_1 (F), ..., candidate_M (F)]`` (see
``ecomsim.sim.observation``). A flat MLP must learn the same "how good is this item for this
shopper" function ``M`` times over, once per input slot; here one small network
scores ``(context, candidate_j)`` for every ``j`` (weights shared, so the policy is
equivariant to the candidate order) and the action logits / Q-values are those
scores. It learned several times faster than SB3's ``MlpPolicy`` at the same
budget (see ``agents/defaults.py``).

* :class:`CandidateEncoder`: features extractor, ``(N, D) -> (N, H + M * H)``:
  a context embedding and one hidden vector per candidate.
* :class:`CandidateActorCriticPolicy` (PPO): logits ``(N, M)`` for ``Discrete(M)``,
  ``(N, k * M)`` (one score per candidate and slot) for ``MultiDiscrete([M] * k)``;
  the critic reads the context and the mean / max of the candidate vectors.
* :class:`CandidateDQNPolicy` (DQN): Q-values ``(N, M)``.
* ``agents.maskable.CandidateMaskablePolicy`` (sb3-contrib's ``MaskablePPO``): the PPO
  policy with invalid candidates masked (the same :class:`CandidateActor` parts).
* :class:`StoreActorCriticPolicy` (PPO on ``ecomsim/Inventory-v0`` and ``ecomsim/Retention-v0``): a plain MLP;
  :class:`StateDQNPolicy` its DQN counterpart (``Retention-v0``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn


def obs_layout(core) -> dict[str, int]:
    """``policy_kwargs`` entries describing an env core's observation layout (``core.layout``)."""
    return {"context_dim": core.layout.context_dim, "num_candidates": core.num_candidates}


class CandidateEncoder(BaseFeaturesExtractor):
    """Context embedding plus one shared-weight hidden vector per candidate.

    Args:
        observation_space: the flat Box of ``C + M * F`` features.
        context_dim: ``C``, the portrait and session features in front.
        num_candidates: ``M``.
        hidden: ``H``, width of the per-candidate network (two layers).
    """

    def __init__(self, observation_space: spaces.Box, context_dim: int, num_candidates: int, hidden: int = 64) -> None:
        obs_dim = int(np.prod(observation_space.shape))
        rest = obs_dim - context_dim
        if context_dim < 1 or rest <= 0 or rest % num_candidates:
            raise ValueError(
                f"observation of {obs_dim} features does not split into context_dim={context_dim} plus "
                f"num_candidates={num_candidates} equal candidate blocks"
            )
        super().__init__(observation_space, features_dim=hidden + num_candidates * hidden)
        self.context_dim, self.num_candidates, self.hidden = context_dim, num_candidates, hidden
        self.item_dim = rest // num_candidates
        self.context_net = nn.Sequential(nn.Linear(context_dim, hidden), nn.ReLU())
        self.candidate_net = nn.Sequential(
            nn.Linear(context_dim + self.item_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )

    def forward(self, obs: th.Tensor) -> th.Tensor:
        n = obs.shape[0]
        ctx = obs[:, : self.context_dim]
        cand = obs[:, self.context_dim :].reshape(n, self.num_candidates, self.item_dim)
        pair = th.cat([cand, ctx[:, None, :].expand(n, self.num_candidates, self.context_dim)], dim=2)
        per = self.candidate_net(pair)  # (N, M, H)
        return th.cat([self.context_net(ctx), per.reshape(n, -1)], dim=1)


class CandidateHead(nn.Module):
    """Scores ``(N, M, H) -> (N, k * M)``: one linear score per candidate and slot (slot-major)."""

    def __init__(self, hidden: int, num_candidates: int, num_slots: int = 1, gain: float = 0.01) -> None:
        super().__init__()
        self.hidden, self.num_candidates, self.num_slots = hidden, num_candidates, num_slots
        self.score = nn.Linear(hidden, num_slots)
        nn.init.orthogonal_(self.score.weight, gain=gain)
        nn.init.zeros_(self.score.bias)

    def forward(self, features: th.Tensor) -> th.Tensor:
        n = features.shape[0]
        per = features[:, self.hidden :].reshape(n, self.num_candidates, self.hidden)
        return self.score(per).transpose(1, 2).reshape(n, self.num_slots * self.num_candidates)


class _CandidateLatent(nn.Module):
    """``mlp_extractor`` for :class:`CandidateActorCriticPolicy`: actor passes features through."""

    def __init__(self, hidden: int, num_candidates: int, value_hidden: int = 64) -> None:
        super().__init__()
        self.hidden, self.num_candidates = hidden, num_candidates
        self.latent_dim_pi = hidden + num_candidates * hidden
        self.latent_dim_vf = value_hidden
        self.value_net = nn.Sequential(nn.Linear(3 * hidden, value_hidden), nn.Tanh())

    def forward(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: th.Tensor) -> th.Tensor:
        return features

    def forward_critic(self, features: th.Tensor) -> th.Tensor:
        n, h = features.shape[0], self.hidden
        per = features[:, h:].reshape(n, self.num_candidates, h)
        return self.value_net(th.cat([features[:, :h], per.mean(dim=1), per.amax(dim=1)], dim=1))


class CandidateActor:
    """The candidate-scoring parts of an actor-critic policy, mixed into SB3's ``ActorCriticPolicy`` here and
    into sb3-contrib's ``MaskableActorCriticPolicy`` in ``agents.maskable`` (the same build hooks).

    Extra args: ``context_dim`` and ``num_candidates`` (from :func:`obs_layout`), ``hidden``.
    """

    CARD_KWARGS = ("context_dim", "num_candidates", "hidden")  # the policy_kwargs an agent card holds

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule,
                 context_dim: int, num_candidates: int, hidden: int = 64, **kwargs: Any) -> None:
        if isinstance(action_space, spaces.Discrete):
            slots = 1
            expected = num_candidates
            got = int(action_space.n)
        elif isinstance(action_space, spaces.MultiDiscrete):
            slots = len(action_space.nvec)
            expected, got = num_candidates, int(action_space.nvec.max())
            if int(action_space.nvec.min()) != got:
                got = -1
        else:
            raise TypeError(f"action_space must be Discrete or MultiDiscrete over candidates, got {action_space}")
        if got != expected:
            raise ValueError(f"action_space must choose among num_candidates={num_candidates} candidates, got {action_space}")
        self._slots, self._hidden, self._num_candidates = slots, hidden, num_candidates
        kwargs.setdefault("features_extractor_class", CandidateEncoder)
        kwargs["features_extractor_kwargs"] = dict(context_dim=context_dim, num_candidates=num_candidates, hidden=hidden)
        self._layout = dict(context_dim=context_dim, num_candidates=num_candidates, hidden=hidden)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = _CandidateLatent(self._hidden, self._num_candidates)

    def _build(self, lr_schedule) -> None:
        super()._build(lr_schedule)
        # replace SB3's dense Linear(latent, num_actions) by the shared per-candidate score
        self.action_net = CandidateHead(self._hidden, self._num_candidates, self._slots)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(self._layout)
        data.pop("features_extractor_kwargs", None)
        return data


class CandidateActorCriticPolicy(CandidateActor, ActorCriticPolicy):
    """PPO policy over candidate scores (see the module docstring and :class:`CandidateActor`)."""


class _HiddenMLP:
    """Mixin of the state-vector policies: SB3's MLP with two layers of ``hidden`` (their one setting, kept in
    the agent card); the subclass says how ``hidden`` becomes SB3's ``net_arch``."""

    CARD_KWARGS = ("hidden",)

    @staticmethod
    def _net_arch(hidden: int) -> Any:
        raise NotImplementedError

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule, hidden: int = 64,
                 **kwargs: Any) -> None:
        self._hidden = hidden
        kwargs["net_arch"] = self._net_arch(hidden)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.pop("net_arch", None)
        data["hidden"] = self._hidden
        return data


class StoreActorCriticPolicy(_HiddenMLP, ActorCriticPolicy):
    """PPO policy for ``ecomsim/Inventory-v0``: SB3's MLP actor-critic, two ``tanh`` layers of ``hidden`` each.

    The store's observation is a short vector of per-group features (no candidates to
    score), so a plain MLP fits; ``hidden`` is its one setting, kept in the agent card.
    """

    @staticmethod
    def _net_arch(hidden: int) -> Any:
        return dict(pi=[hidden, hidden], vf=[hidden, hidden])


class CandidateQNetwork(QNetwork):
    """Q-values ``(N, M)`` from a :class:`CandidateEncoder` and a shared linear score."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Discrete, features_extractor: CandidateEncoder,
                 features_dim: int, **kwargs: Any) -> None:
        kwargs["net_arch"] = []
        super().__init__(observation_space, action_space, features_extractor, features_dim, **kwargs)
        self.q_net = CandidateHead(features_extractor.hidden, features_extractor.num_candidates, 1, gain=1.0)


class CandidateDQNPolicy(DQNPolicy):
    """DQN policy whose Q-network scores each candidate with shared weights.

    Extra args: ``context_dim`` and ``num_candidates`` (from :func:`obs_layout`), ``hidden``.
    """

    CARD_KWARGS = ("context_dim", "num_candidates", "hidden")

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Discrete, lr_schedule,
                 context_dim: int, num_candidates: int, hidden: int = 64, **kwargs: Any) -> None:
        if not isinstance(action_space, spaces.Discrete) or int(action_space.n) != num_candidates:
            raise ValueError(f"DQN needs Discrete(num_candidates={num_candidates}) actions (Recommend-v0), got {action_space}")
        kwargs["features_extractor_class"] = CandidateEncoder
        kwargs["features_extractor_kwargs"] = dict(context_dim=context_dim, num_candidates=num_candidates, hidden=hidden)
        self._layout = dict(context_dim=context_dim, num_candidates=num_candidates, hidden=hidden)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def make_q_net(self) -> CandidateQNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return CandidateQNetwork(**net_args).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(self._layout)
        data.pop("features_extractor_kwargs", None)
        return data


class StateDQNPolicy(_HiddenMLP, DQNPolicy):
    """DQN policy over a state vector (``ecomsim/Retention-v0``): SB3's MLP Q-network, two layers of ``hidden``.

    Like :class:`StoreActorCriticPolicy`, ``hidden`` is its one setting, kept in the agent card.
    """

    @staticmethod
    def _net_arch(hidden: int) -> Any:
        return [hidden, hidden]


POLICIES: dict[str, dict[str, type]] = {
    "candidate": {"ppo": CandidateActorCriticPolicy, "dqn": CandidateDQNPolicy},
}


def is_candidate_space(space: gym.Space) -> bool:
    return isinstance(space, (spaces.Discrete, spaces.MultiDiscrete))
