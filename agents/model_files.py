"""Agents on disk without pickle: weights (a ``state_dict``) plus a JSON card.

What :func:`agents.train.train` writes in its output directory:

================= ==========================================================================
``model.pt``      the policy's ``state_dict`` (``torch.save``; read with ``weights_only=True``)
``model.json``    its card (:func:`agent_card`): format, algorithm, env id and options, the
                  observation and action spaces, the policy's class and ``policy_kwargs``,
                  the hyperparameters, steps trained, seed, versions, sha256 of ``model.pt``
``checkpoint.pt`` everything to continue training, tensors and JSON (``agents.checkpoint``)
``state.json``    the run state, for people and tools (``agents.checkpoint``)
================= ==========================================================================

Why not SB3's ``model.save`` zip: its ``data`` entry is JSON whose non-JSON values
(schedules, spaces, classes) are cloudpickled, and ``PPO.load`` / ``DQN.load``
unpickle them, so a crafted zip runs code on load. Here nothing is unpickled:
``torch.load(..., weights_only=True)`` accepts tensors and plain containers only, the
policy class comes from a fixed table (:data:`POLICY_CLASSES`), the learning-rate
schedule and spaces are rebuilt from JSON. An SB3 zip still loads with
``trust_pickle=True`` (``--trust-pickle``), with a warning saying why.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from agents.policies import CandidateActorCriticPolicy, CandidateDQNPolicy, StateDQNPolicy, StoreActorCriticPolicy
from ecomsim.cards import check_file, check_sha256, check_state_dict, load_tensors, read_card, write_atomic

AGENT_FORMAT = "ecomsim-agent-v1"
MODEL = "model.pt"
CHECKPOINT = "checkpoint.pt"
STATE = "state.json"
LEGACY_CHECKPOINT = "checkpoint.zip"  # SB3 zip of releases before this format
POLICY_CLASSES = {"ppo": CandidateActorCriticPolicy, "dqn": CandidateDQNPolicy, "maskable_ppo": None}
ALGOS = tuple(POLICY_CLASSES)


def policy_classes(algo: str) -> tuple[type, ...]:
    """The policy classes an agent of ``algo`` may hold (the maskable one imports sb3-contrib, an optional extra)."""
    if algo == "maskable_ppo":
        from agents.maskable import CandidateMaskablePolicy

        return (CandidateMaskablePolicy,)
    if algo == "ppo":
        return (CandidateActorCriticPolicy, StoreActorCriticPolicy)
    return (CandidateDQNPolicy, StateDQNPolicy)
CARD_KEYS = ("algo", "policy", "policy_kwargs", "env_id", "env_options", "observation_space", "action_space",
             "hyperparams", "weights", "sha256")
PICKLE_WARNING = ("{path!r} is a Stable-Baselines3 zip: loading it unpickles its 'data' entry, and a crafted file "
                  "runs code on load")


# ================================================================= spaces
def describe_space(space: gym.Space) -> dict[str, Any]:
    """A JSON description of a ``Box`` (shape, dtype), ``Discrete`` (n) or ``MultiDiscrete`` (nvec) space."""
    if isinstance(space, spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype)}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": [int(v) for v in np.asarray(space.nvec).ravel()]}
    raise TypeError(f"agents act on Box observations and Discrete / MultiDiscrete actions, got {space}")


def space_from_description(d: Any, where: str) -> gym.Space:
    """The space :func:`describe_space` described (Box bounds are not stored: the policies do not read them)."""
    try:
        if d["type"] == "Box":
            shape = tuple(int(v) for v in d["shape"])
            return spaces.Box(-np.inf, np.inf, shape=shape, dtype=np.dtype(d["dtype"]))
        if d["type"] == "Discrete":
            return spaces.Discrete(int(d["n"]))
        if d["type"] == "MultiDiscrete":
            return spaces.MultiDiscrete(np.asarray([int(v) for v in d["nvec"]], dtype=np.int64))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where} describes an invalid space {d!r}: {type(exc).__name__}: {exc}") from None
    raise ValueError(f"{where} describes a space of type {d.get('type') if isinstance(d, dict) else d!r}; "
                     "expected Box, Discrete or MultiDiscrete")


def show_space(d: dict[str, Any]) -> str:
    """``Discrete(20)``, ``MultiDiscrete([20, 20])``, ``Box(491,) float32`` from a description."""
    if d.get("type") == "Box":
        return f"Box({', '.join(map(str, d['shape']))}{',' if len(d['shape']) == 1 else ''}) {d['dtype']}"
    if d.get("type") == "Discrete":
        return f"Discrete({d['n']})"
    return f"MultiDiscrete({d.get('nvec')})"


# ================================================================== cards
def agent_card(model, *, algo: str, env_id: str | None, env_options: dict[str, Any], hyperparams: dict[str, Any],
               seed: int | None) -> dict[str, Any]:
    """The JSON card of an SB3 model (everything to rebuild its policy and check the env it is used on)."""
    import stable_baselines3

    if algo not in POLICY_CLASSES:
        raise ValueError(f"algo must be one of {list(POLICY_CLASSES)}, got {algo!r}")
    return {
        "format": AGENT_FORMAT,
        "algo": algo,
        "policy": type(model.policy).__name__,
        "policy_kwargs": {k: int(v) for k, v in model.policy_kwargs.items() if k in type(model.policy).CARD_KWARGS},
        "env_id": env_id,
        "env_options": dict(env_options),
        "observation_space": describe_space(model.observation_space),
        "action_space": describe_space(model.action_space),
        "hyperparams": json.loads(json.dumps(hyperparams)),
        "num_timesteps": int(model.num_timesteps),
        "seed": seed,
        "versions": {"torch": torch.__version__, "stable_baselines3": stable_baselines3.__version__,
                     "gymnasium": gym.__version__},
    }


def tensor_bytes(obj: Any) -> bytes:
    """``torch.save(obj)`` as bytes (to hash or to write atomically)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def save_agent(model, path: str | Path, card: dict[str, Any]) -> dict[str, Any]:
    """Write ``model``'s policy weights to ``path`` (``.pt``) and ``card`` beside it (``.json``); return the card.

    Both files are written atomically (temporary file, then ``os.replace``), the weights first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = tensor_bytes({k: v.detach().cpu() for k, v in model.policy.state_dict().items()})
    write_atomic(path, data)
    card = dict(card, weights=path.name, sha256=hashlib.sha256(data).hexdigest())
    write_atomic(path.with_suffix(".json"), (json.dumps(card, indent=1, sort_keys=True) + "\n").encode())
    return card


@dataclass
class SavedAgent:
    """A trained policy and its card: what :func:`load_agent` returns; ``predict`` as SB3 models have it.

    Attributes:
        algo: ``ppo`` or ``dqn``.
        policy: the SB3 policy (``eval`` mode).
        card: the card (built from the model's spaces for a trusted SB3 zip).
        path: the file it came from.
    """

    algo: str
    policy: Any
    card: dict[str, Any]
    path: Path

    @property
    def observation_space(self) -> gym.Space:
        return self.policy.observation_space

    @property
    def action_space(self) -> gym.Space:
        return self.policy.action_space

    def predict(self, observation: np.ndarray, state=None, episode_start=None, deterministic: bool = False,
                action_masks: np.ndarray | None = None):
        """Actions for a batch of observations (SB3's ``predict``; ``action_masks`` for a ``maskable_ppo`` agent)."""
        if self.algo == "maskable_ppo":
            return self.policy.predict(observation, state, episode_start, deterministic, action_masks=action_masks)
        return self.policy.predict(observation, state, episode_start, deterministic)

    def check_env(self, env_id: str | None, action_space: gym.Space, observation_space: gym.Space) -> None:
        """``ValueError`` unless the env (its id, when known, and its spaces) is the one the agent was trained for."""
        check_fits(self.card, str(self.path), env_id, action_space, observation_space)


def check_fits(card: dict[str, Any], source: str, env_id: str | None, action_space: gym.Space,
               observation_space: gym.Space) -> None:
    """``ValueError`` naming both when ``card``'s env id or spaces differ from the env's."""
    trained = card.get("env_id")
    if env_id is not None and trained is not None and env_id != trained:
        raise ValueError(f"{source!r} is a {card.get('algo')} agent trained on {trained} "
                         f"({show_space(card['action_space'])} actions), not {env_id}; score it with --env-id {trained}")
    got = {"action_space": describe_space(action_space), "observation_space": describe_space(observation_space)}
    for key, have in got.items():
        want = card[key]
        if want != have:
            raise ValueError(
                f"{source!r} was trained for {key.replace('_', ' ')} {show_space(want)}, but this env "
                f"({env_id or 'the env'}) has {show_space(have)}; use the options it was trained with "
                f"({trained}: {card.get('env_options')})")


# ================================================================ loading
def agent_card_path(path: str | Path) -> Path:
    """The card of a model file: ``model.json`` beside ``model.pt`` (a ``.json`` path is the card itself)."""
    path = Path(path)
    return path if path.suffix == ".json" else path.with_suffix(".json")


def is_sb3_zip(path: Path) -> bool:
    """True for a Stable-Baselines3 ``model.save`` zip (a zip with a ``data`` entry)."""
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
    return "data" in names  # SB3 always unpickles this entry; policy.pth may be missing from a crafted file


def load_agent(path: str | Path, algo: str | None = None, device: str = "cpu", trust_pickle: bool = False) -> SavedAgent:
    """Load an agent saved by :func:`save_agent` (``model.pt`` + ``model.json``) without unpickling anything.

    Args:
        path: the weights file, or its card.
        algo: the algorithm expected (``None``: the card's).
        device: torch device of the policy.
        trust_pickle: also load a Stable-Baselines3 zip (``model.save``), which unpickles
            its ``data`` entry: only for files you made or trust (a warning says so).

    Raises:
        FileNotFoundError / IsADirectoryError: no such file, or a directory (a run directory
            names the model file inside it).
        ValueError: an SB3 zip without ``trust_pickle``; a card that is invalid, of another
            algorithm, or whose checksum or weights do not match.
    """
    path = Path(path)
    if algo is not None and algo not in POLICY_CLASSES:
        raise ValueError(f"algo must be one of {list(POLICY_CLASSES)}, got {algo!r}")
    if path.is_dir():
        inside = [name for name in (MODEL, "model.zip") if (path / name).is_file()]
        hint = f"; it holds {inside[0]}: pass {str(path / inside[0])!r}" if inside else ""
        raise IsADirectoryError(f"agent model {str(path)!r} is a directory; expected a model file ({MODEL}){hint}")
    if not path.exists() and path.suffix == "" and path.with_suffix(".pt").is_file():
        path = path.with_suffix(".pt")
    check_file(path, f"{algo or 'agent'} model", fix="; train one with scripts/train_agent.py")
    if is_sb3_zip(path):
        return _load_sb3_zip(path, algo, device, trust_pickle)
    card_path = agent_card_path(path)
    if not card_path.is_file():
        raise FileNotFoundError(f"agent model {str(path)!r} has no card {str(card_path)!r} beside it; "
                                f"expected the {MODEL} + model.json pair scripts/train_agent.py writes")
    card = read_card(card_path, AGENT_FORMAT, "agent", required=CARD_KEYS)
    weights = card_path.parent / str(card["weights"])
    if path.suffix != ".json" and weights.name != path.name:
        raise ValueError(f"card {str(card_path)!r} belongs to {weights.name!r}, not to {path.name!r}")
    check_sha256(check_file(weights, "agent weights file", fix=f" (named by {str(card_path)!r})"), card["sha256"],
                 "agent weights", "retrain or copy the model.pt that belongs to this card")
    if algo is not None and card["algo"] != algo:
        raise ValueError(f"{str(path)!r} holds a {card['algo']} agent, not {algo}; load it as {card['algo']}:{path}")
    policy = build_policy(card, str(card_path), device)
    state = check_state_dict(load_tensors(weights, "agent weights", map_location=device), weights, "agent weights")
    load_state(policy.load_state_dict, state, f"agent weights {str(weights)!r}")
    policy.set_training_mode(False)
    return SavedAgent(card["algo"], policy, card, path)


def build_policy(card: dict[str, Any], where: str, device: str = "cpu"):
    """The card's policy, freshly initialised (weights loaded by the caller)."""
    algo = card.get("algo")
    if algo not in POLICY_CLASSES:
        raise ValueError(f"{where}: algo must be one of {list(POLICY_CLASSES)}, got {algo!r}")
    classes = {c.__name__: c for c in policy_classes(algo)}
    if card.get("policy") not in classes:
        raise ValueError(f"{where}: policy must be one of {list(classes)} for {algo}, got {card.get('policy')!r}")
    cls = classes[card["policy"]]
    kwargs = card.get("policy_kwargs")
    if not isinstance(kwargs, dict) or set(kwargs) != set(cls.CARD_KWARGS) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in kwargs.values()):
        raise ValueError(f"{where}: policy_kwargs must be positive integers {', '.join(cls.CARD_KWARGS)}, "
                         f"got {kwargs!r}")
    obs_space = space_from_description(card.get("observation_space"), f"{where} observation_space")
    act_space = space_from_description(card.get("action_space"), f"{where} action_space")
    try:
        policy = cls(obs_space, act_space, lambda _: 0.0, **kwargs)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: the card's spaces and policy_kwargs do not make a {cls.__name__}: {exc}") from None
    return policy.to(device)


def load_state(load, state: dict[str, Any], what: str) -> None:
    try:
        load(state)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise ValueError(f"{what} do not fit the card's policy (another architecture or hidden size?): "
                         f"{str(exc).splitlines()[0]}") from None


def _load_sb3_zip(path: Path, algo: str | None, device: str, trust_pickle: bool) -> SavedAgent:
    message = PICKLE_WARNING.format(path=str(path))
    if not trust_pickle:
        raise ValueError(f"{message}; refused. Load it with --trust-pickle (trust_pickle=True) only if you made it or "
                         f"trust its source, or use the {MODEL} + model.json pair scripts/train_agent.py writes")
    if algo is None:
        raise ValueError(f"{str(path)!r}: give the algorithm of an SB3 zip (ppo:PATH or dqn:PATH)")
    warnings.warn(f"{message}; loading it because trust_pickle=True", UserWarning, stacklevel=3)
    from stable_baselines3 import DQN, PPO

    try:
        model = {"ppo": PPO, "dqn": DQN}[algo].load(path, device=device)
    except (KeyError, ValueError, RuntimeError, TypeError, AttributeError, EOFError, OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{str(path)!r} is not a loadable SB3 {algo.upper()} model: {exc}") from None
    card = agent_card(model, algo=algo, env_id=None, env_options={}, hyperparams={}, seed=model.seed)
    return SavedAgent(algo, model.policy, card, path)
