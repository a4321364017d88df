"""Offline-trained Q-networks in the safe model format: plain weights plus a JSON card, no pickle.

``scripts/train_offline.py`` (run in d3rlpy's own venv) trains discrete CQL on a
Minari dataset and saves the Q-network here as

* ``q_network.pt``: a ``state_dict`` of tensors only, read with ``torch.load(..., weights_only=True)``;
* ``card.json``: format, algorithm and its hyperparameters, env id and options,
  observation and action spaces, the network (:class:`QNetworkSpec`), the weights'
  file name and sha256, the dataset it came from.

:func:`load_offline_policy` rebuilds the network from the card alone (no d3rlpy
needed), checks the checksum, the tensors' names and shapes and the env, and
returns an :class:`OfflinePolicy` that shows the candidate of highest Q (the mean
over critics, as d3rlpy's ``predict`` does). Every refusal names the file, the field,
what it holds and what was expected.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from agents.baselines import Policy

CARD_FORMAT = "ecomsim-offline-q/1"
WEIGHTS_NAME = "q_network.pt"
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "swish": nn.SiLU, "gelu": nn.GELU}
CARD_KEYS = ("format", "algorithm", "env_id", "env_options", "observation_space", "action_space", "network", "weights")
SPACE_OPTIONS = ("mode", "num_candidates", "slate_size")  # options that define the spaces: must match the card's


@dataclass(frozen=True)
class QNetworkSpec:
    """Architecture of a Q-network, ``(N, input_dim) -> (N, num_actions)``.

    Attributes:
        input_dim: observation features ``D``.
        num_actions: discrete actions ``M`` (candidates).
        kind: ``"mlp"``: one MLP ``D -> hidden... -> M``; ``"candidate"``: one MLP
            ``C + F -> hidden... -> 1`` scores every candidate from the context (the first
            ``context_dim`` features ``C``) and that candidate's block of ``F`` features, the
            weights shared over candidates (as ``agents/policies.py`` does for PPO and DQN).
        context_dim: ``C`` for ``kind="candidate"`` (``None`` for ``"mlp"``).
        hidden_units: widths of the hidden layers, each followed by ``activation``.
        activation: ``relu``, ``tanh``, ``swish`` or ``gelu``.
        num_critics: independent Q-networks; the action value is their mean.
        observation_scaler: ``None`` or ``"standard"``: inputs become
            ``(x - obs_mean) / (obs_std + scaler_eps)``, ``obs_mean`` / ``obs_std`` stored in the weights.
        scaler_eps: the epsilon of the standard scaler.
    """

    input_dim: int
    num_actions: int
    kind: str = "mlp"
    context_dim: int | None = None
    hidden_units: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    num_critics: int = 1
    observation_scaler: str | None = None
    scaler_eps: float = 1e-3

    def __post_init__(self) -> None:
        for name in ("input_dim", "num_actions", "num_critics"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"network.{name} must be a positive integer, got {v!r}")
        units = self.hidden_units
        if not isinstance(units, (list, tuple)) or not units or any(isinstance(u, bool) or not isinstance(u, int) or u < 1 for u in units):
            raise ValueError(f"network.hidden_units must be a non-empty list of positive integers, got {units!r}")
        object.__setattr__(self, "hidden_units", tuple(units))
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"network.activation must be one of {list(ACTIVATIONS)}, got {self.activation!r}")
        if self.observation_scaler not in (None, "standard"):
            raise ValueError(f"network.observation_scaler must be null or 'standard', got {self.observation_scaler!r}")
        if self.kind not in ("mlp", "candidate"):
            raise ValueError(f"network.kind must be 'mlp' or 'candidate', got {self.kind!r}")
        if self.kind == "candidate":
            c = self.context_dim
            ok = isinstance(c, int) and not isinstance(c, bool) and 1 <= c < self.input_dim
            if not ok or (self.input_dim - c) % self.num_actions:
                raise ValueError(f"network.context_dim must leave num_actions={self.num_actions} equal candidate blocks "
                                 f"of the input_dim={self.input_dim} features, got {c!r}")
        elif self.context_dim is not None:
            raise ValueError(f"network.context_dim applies to kind='candidate' only, got {self.context_dim!r}")

    @property
    def scorer_dims(self) -> tuple[int, int]:
        """``(input, output)`` widths of each critic's MLP: ``(D, M)`` or ``(C + F, 1)``."""
        if self.kind == "mlp":
            return self.input_dim, self.num_actions
        c = int(self.context_dim)
        return c + (self.input_dim - c) // self.num_actions, 1

    @classmethod
    def from_card(cls, d: Any, where: str) -> "QNetworkSpec":
        if not isinstance(d, dict):
            raise ValueError(f"{where}: 'network' must be an object, got {type(d).__name__}")
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - allowed)
        missing = sorted(k for k in ("input_dim", "num_actions", "hidden_units") if k not in d)
        if unknown or missing:
            raise ValueError(f"{where}: 'network' has unknown keys {unknown} / lacks {missing}; keys are {sorted(allowed)}")
        try:
            return cls(**d)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc

    def to_card(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden_units"] = list(self.hidden_units)
        return d


class QNetwork(nn.Module):
    """``num_critics`` Q-networks (see :class:`QNetworkSpec`); ``forward`` gives their mean ``(N, M)``.

    Tensor names: ``critics.<i>.<j>.weight`` / ``.bias`` for the ``j``-th module of critic ``i``
    (Linear and activation modules alternate; the last module is the output Linear),
    plus ``obs_mean`` / ``obs_std`` ``(D,)`` with the standard scaler.
    """

    def __init__(self, spec: QNetworkSpec) -> None:
        super().__init__()
        self.spec = spec
        critics = []
        width_in, width_out = spec.scorer_dims
        for _ in range(spec.num_critics):
            layers: list[nn.Module] = []
            width = width_in
            for units in spec.hidden_units:
                layers += [nn.Linear(width, units), ACTIVATIONS[spec.activation]()]
                width = units
            layers.append(nn.Linear(width, width_out))
            critics.append(nn.Sequential(*layers))
        self.critics = nn.ModuleList(critics)
        if spec.observation_scaler == "standard":
            self.register_buffer("obs_mean", torch.zeros(spec.input_dim))
            self.register_buffer("obs_std", torch.ones(spec.input_dim))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.spec.observation_scaler == "standard":
            obs = (obs - self.obs_mean) / (self.obs_std + self.spec.scaler_eps)
        if self.spec.kind == "candidate":
            obs = candidate_rows(obs, int(self.spec.context_dim), self.spec.num_actions)
            return torch.stack([c(obs).squeeze(-1) for c in self.critics]).mean(dim=0)
        return torch.stack([c(obs) for c in self.critics]).mean(dim=0)


def candidate_rows(obs: torch.Tensor, context_dim: int, num_candidates: int) -> torch.Tensor:
    """``(N, D)`` observations -> ``(N, M, C + F)``: the context joined to each candidate's block."""
    n = obs.shape[0]
    ctx = obs[:, :context_dim].unsqueeze(1).expand(n, num_candidates, context_dim)
    cand = obs[:, context_dim:].reshape(n, num_candidates, -1)
    return torch.cat([ctx, cand], dim=-1)


def _space_dicts(input_dim: int, num_actions: int) -> tuple[dict, dict]:
    return ({"type": "Box", "shape": [input_dim], "dtype": "float32"}, {"type": "Discrete", "n": num_actions})


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_offline_policy(net: QNetwork, out_dir: str | Path, *, algorithm: str, env_id: str, env_options: dict,
                        extra: dict[str, Any] | None = None) -> Path:
    """Write ``q_network.pt`` and ``card.json`` under ``out_dir``; returns the card's path.

    ``extra`` adds card entries (``algorithm_config``, ``dataset``, ``training``, ...).
    """
    from ecomsim.cards import sha256_file

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {str(out)!r} is a file, expected a directory")
    out.mkdir(parents=True, exist_ok=True)
    weights = out / WEIGHTS_NAME
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()}
    _write_atomic(weights, lambda p: torch.save(tensors, p))
    obs_space, act_space = _space_dicts(net.spec.input_dim, net.spec.num_actions)
    card = {"format": CARD_FORMAT, "algorithm": algorithm, "env_id": env_id, "env_options": env_options,
            "observation_space": obs_space, "action_space": act_space, "network": net.spec.to_card(),
            "weights": {"file": WEIGHTS_NAME, "sha256": sha256_file(weights)}, **(extra or {})}
    path = out / "card.json"
    _write_atomic(path, lambda p: p.write_text(json.dumps(card, indent=1) + "\n"))
    return path


def _card_path(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / "card.json"
    if not p.exists():
        raise FileNotFoundError(f"no offline-policy card at {str(p)!r} (give card.json or the folder holding it)")
    if not p.is_file():
        raise ValueError(f"offline-policy card {str(p)!r} is not a file")
    return p


def load_network(path: str | Path) -> tuple[QNetwork, dict[str, Any]]:
    """The Q-network and its card from a card file (or its folder), every field checked.

    Raises:
        FileNotFoundError: the card or its weights file is missing.
        ValueError: bad card (missing keys, wrong format or spaces), a checksum that differs from
            the card's, a file that is not plain tensors, tensors of other names or shapes.
    """
    from ecomsim.cards import read_card, sha256_file

    card_path = _card_path(path)
    where = f"offline-policy card {str(card_path)!r}"
    card = read_card(card_path, CARD_FORMAT, "offline-policy")
    missing = [k for k in CARD_KEYS if k not in card]
    if missing:
        raise ValueError(f"{where} lacks keys {missing}; a card needs {list(CARD_KEYS)}")
    if not isinstance(card["env_id"], str) or not isinstance(card["env_options"], dict):
        raise ValueError(f"{where}: env_id must be a string and env_options an object, got "
                         f"{card['env_id']!r} and {type(card['env_options']).__name__}")
    spec = QNetworkSpec.from_card(card["network"], where)
    obs_space, act_space = _space_dicts(spec.input_dim, spec.num_actions)
    for key, expected in (("observation_space", obs_space), ("action_space", act_space)):
        if card[key] != expected:
            raise ValueError(f"{where}: {key} is {card[key]!r} but the network needs {expected!r}")
    w = card["weights"]
    if not isinstance(w, dict) or not isinstance(w.get("file"), str) or not isinstance(w.get("sha256"), str):
        raise ValueError(f"{where}: 'weights' must be {{'file': name, 'sha256': hex}}, got {w!r}")
    wpath = card_path.parent / w["file"]
    if not wpath.is_file():
        raise FileNotFoundError(f"weights file {str(wpath)!r} named by {where} does not exist")
    digest = sha256_file(wpath)
    if digest != w["sha256"]:
        raise ValueError(f"weights file {str(wpath)!r} has sha256 {digest}, but {where} says {w['sha256']}: "
                         "the file was changed or belongs to another card")
    try:
        state = torch.load(wpath, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        raise ValueError(f"weights file {str(wpath)!r} is not a plain tensor file loadable with weights_only=True: {exc}") from exc
    net = QNetwork(spec)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"weights file {str(wpath)!r} must hold a dict of tensors, got {type(state).__name__}")
    found = {k: tuple(v.shape) for k, v in state.items()}
    if found != expected:
        diff = sorted(set(found.items()) ^ set(expected.items()))
        raise ValueError(f"weights file {str(wpath)!r} does not fit the card's network: differing (name, shape) "
                         f"entries {diff[:6]}{' ...' if len(diff) > 6 else ''}")
    net.load_state_dict(state)
    net.eval()
    return net, card


class OfflinePolicy(Policy):
    """Greedy on the Q-network: shows ``argmax_a Q(obs, a)`` (the mean over critics).

    Args:
        net: the Q-network.
        card: its card (env id, options and spaces are checked against the env in :meth:`reset`).
        name: the policy's name in reports.
    """

    def __init__(self, net: QNetwork, card: dict[str, Any], name: str = "offline") -> None:
        self.net, self.card, self.name = net, card, name

    def reset(self, core, rng: np.random.Generator) -> None:
        opts = self.card["env_options"]
        for key in SPACE_OPTIONS:
            if key in opts and getattr(core.config, key) != opts[key]:
                raise ValueError(f"offline policy was trained with {key}={opts[key]!r}, the env has {key}={getattr(core.config, key)!r}")
        obs_dim = core.layout.obs_dim
        spec = self.net.spec
        if (obs_dim, core.num_candidates) != (spec.input_dim, spec.num_actions):
            raise ValueError(f"offline policy expects observations of {spec.input_dim} features and {spec.num_actions} "
                             f"actions, the env has {obs_dim} and {core.num_candidates}")
        super().reset(core, rng)

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """``(N, M)`` Q-values of ``obs`` ``(N, D)``."""
        with torch.inference_mode():
            return self.net(torch.as_tensor(np.asarray(obs, dtype=np.float32))).numpy()

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.argmax(self.q_values(obs), axis=1)


def load_offline_policy(path: str | Path, env_id: str | None = None, name: str = "offline") -> OfflinePolicy:
    """:func:`load_network` as a policy; with ``env_id``, refuse a card trained for another id."""
    net, card = load_network(path)
    if env_id is not None and card["env_id"] != env_id:
        raise ValueError(f"offline policy {str(_card_path(path))!r} was trained for env id {card['env_id']!r}, "
                         f"not {env_id!r}; score it on {card['env_id']!r}")
    return OfflinePolicy(net, card, name)


def offline_policy_factory(path: str | Path, env_id: str | None = None) -> Callable[[], OfflinePolicy]:
    """For ``scripts/evaluate.py --policy offline:PATH``: loads once, then hands out the (stateless) policy."""
    policy = load_offline_policy(path, env_id)
    return lambda: policy
