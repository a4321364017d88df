"""Training checkpoints without pickle: ``checkpoint.pt`` (tensors and JSON) and ``state.json``.

``checkpoint.pt`` holds everything needed to continue a run, written atomically
(temporary file, then ``os.replace``): the policy's and its optimizer's ``state_dict``,
SB3's counters (steps, updates, episodes, DQN's target-update calls and exploration
rate, the episode-info window), the RNG states SB3 draws from (torch for actions,
numpy for minibatch order and epsilon-greedy, Python's, the action space's own), the
agent card (``agents.model_files``) and the run state. ``state.json`` repeats the run
state (steps, evaluation history, training seconds, config) for people and tools; it is
written after the checkpoint, so a kill between the two leaves it one checkpoint
behind, and :func:`load_checkpoint` then uses the checkpoint's own copy.

DQN's replay buffer is not kept (100k transitions of 491 floats are about 400 MB): a
resumed DQN run refills it while it keeps training, as SB3's own zips do unless
``save_replay_buffer`` is called.
"""

from __future__ import annotations

import json
import random
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.model_files import (CARD_KEYS, CHECKPOINT, LEGACY_CHECKPOINT, PICKLE_WARNING, STATE, load_state,
                                tensor_bytes)
from ecomsim.cards import load_tensors, read_json, require_keys, write_atomic

CHECKPOINT_FORMAT = "ecomsim-agent-checkpoint-v1"


def save_checkpoint(model, out_dir: str | Path, card: dict[str, Any], run_state: dict[str, Any]) -> Path:
    """Write ``checkpoint.pt`` (atomically) and then ``state.json``; see the module docstring for what they hold."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {"num_timesteps": int(model.num_timesteps), **run_state}
    payload = {
        "format": CHECKPOINT_FORMAT,
        "card": json.dumps(dict(card, num_timesteps=int(model.num_timesteps))),
        "run_state": json.dumps(state),
        "policy": {k: v.detach().cpu() for k, v in model.policy.state_dict().items()},
        "optimizer": model.policy.optimizer.state_dict(),
        "counters": json.dumps(_counters(model)),
        "rng": _rng_states(model),
    }
    path = write_atomic(out_dir / CHECKPOINT, tensor_bytes(payload))
    write_atomic(out_dir / STATE, json.dumps(state, indent=1).encode())
    return path


@dataclass
class Checkpoint:
    """A checkpoint read back: its card, run state and tensors (see :func:`load_checkpoint`)."""

    path: Path
    card: dict[str, Any]
    run_state: dict[str, Any]
    counters: dict[str, Any]
    payload: dict[str, Any]

    def restore(self, model) -> None:
        """Put the checkpoint's weights, optimizer state, counters and RNG states into a freshly built ``model``."""
        if model.policy_kwargs != self.card["policy_kwargs"]:
            raise ValueError(f"checkpoint {str(self.path)!r} was trained with policy {self.card['policy_kwargs']}, "
                             f"this run builds {model.policy_kwargs}; resume with the same hidden size and env options")
        load_state(model.policy.load_state_dict, self.payload["policy"], f"checkpoint {str(self.path)!r} weights")
        try:
            model.policy.optimizer.load_state_dict(self.payload["optimizer"])
        except (ValueError, KeyError, RuntimeError) as exc:
            raise ValueError(f"checkpoint {str(self.path)!r} optimizer state does not fit the policy: {exc}") from None
        counters = self.counters
        model.num_timesteps = counters["num_timesteps"]
        model._n_updates, model._episode_num = counters["n_updates"], counters["episode_num"]
        if hasattr(model, "_n_calls"):  # DQN: target-network updates count calls
            model._n_calls, model.exploration_rate = counters.get("n_calls", 0), counters.get("exploration_rate", 0.0)
        model.ep_info_buffer = deque(counters.get("ep_info", []), maxlen=model._stats_window_size)
        model.ep_success_buffer = deque(counters.get("ep_success", []), maxlen=model._stats_window_size)
        _set_rng_states(model, self.payload["rng"])


def load_checkpoint(out_dir: str | Path, algo: str) -> Checkpoint:
    """Read ``<out_dir>/checkpoint.pt`` and ``state.json``; errors name the file and the problem.

    ``state.json`` must parse; when its step count differs from the checkpoint's (the
    process ended between the two writes) the checkpoint's own copy of the run state is used.
    """
    out_dir = Path(out_dir)
    path = out_dir / CHECKPOINT
    if not path.is_file():
        if (out_dir / LEGACY_CHECKPOINT).is_file():
            raise ValueError(f"{str(out_dir)!r} holds {LEGACY_CHECKPOINT}, an SB3 zip of an earlier release: "
                             f"{PICKLE_WARNING.format(path=str(out_dir / LEGACY_CHECKPOINT))}; resume from it with "
                             "--trust-pickle only if you trust it")
        raise FileNotFoundError(f"--resume: no {CHECKPOINT} in {str(out_dir)!r}; train without --resume first")
    payload = load_tensors(path, "checkpoint")
    where = f"checkpoint {str(path)!r}"
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{where} has format {found!r}, expected {CHECKPOINT_FORMAT!r}")
    require_keys(payload, ("card", "run_state", "policy", "optimizer", "counters", "rng"), where)
    try:
        card, embedded, counters = (json.loads(payload[k]) for k in ("card", "run_state", "counters"))
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{where} has unreadable card, run state or counters: {exc}") from None
    require_keys(card, CARD_KEYS[:-2], f"{where} card")
    require_keys(counters, ("num_timesteps", "n_updates", "episode_num"), f"{where} counters")
    if card["algo"] != algo:
        raise ValueError(f"{where} holds a {card['algo']} run; resume it with --algo {card['algo']} (got {algo})")
    return Checkpoint(path, card, _run_state(out_dir / STATE, embedded, counters["num_timesteps"]), counters, payload)


def _run_state(path: Path, embedded: dict[str, Any], steps: int) -> dict[str, Any]:
    if not path.exists():
        return embedded
    state = read_json(path, "run state")
    if not isinstance(state, dict):
        raise ValueError(f"run state {str(path)!r} must be a JSON object, got {type(state).__name__}")
    kinds = {"num_timesteps": int, "eval_history": list, "train_seconds": (int, float)}
    for key, kind in kinds.items():
        if key in state and not isinstance(state[key], kind):
            raise ValueError(f"run state {str(path)!r}: {key} must be {kind}, got {state[key]!r}")
    return state if state.get("num_timesteps") == steps else embedded


# ================================================================== state
def _counters(model) -> dict[str, Any]:
    out = {"num_timesteps": int(model.num_timesteps), "n_updates": int(model._n_updates),
           "episode_num": int(model._episode_num),
           "ep_info": [{k: float(v) for k, v in e.items()} for e in (model.ep_info_buffer or [])],
           "ep_success": [bool(v) for v in (model.ep_success_buffer or [])]}
    if hasattr(model, "_n_calls"):
        out.update(n_calls=int(model._n_calls), exploration_rate=float(model.exploration_rate))
    return out


def _rng_states(model) -> dict[str, Any]:
    """The RNGs SB3 draws from: torch's (action sampling), numpy's (minibatch order, epsilon-greedy), Python's,
    and the action space's own (DQN's random actions)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    out = {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(keys.astype(np.int64)),
           "numpy": json.dumps([kind, int(pos), int(has_gauss), float(cached)]), "python": json.dumps(random.getstate()),
           "action_space": json.dumps(model.action_space.np_random.bit_generator.state)}
    if torch.cuda.is_available() and model.device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def _set_rng_states(model, rng: dict[str, Any]) -> None:
    torch.set_rng_state(rng["torch"])
    kind, pos, has_gauss, cached = json.loads(rng["numpy"])
    np.random.set_state((kind, rng["numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = json.loads(rng["python"])
    random.setstate((version, tuple(internal), gauss))
    model.action_space.np_random.bit_generator.state = json.loads(rng["action_space"])
    if "cuda" in rng and torch.cuda.is_available() and model.device.type == "cuda":
        torch.cuda.set_rng_state_all(rng["cuda"])
