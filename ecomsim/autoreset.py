"""The native vector env's autoreset modes, in Gymnasium's terms (``gymnasium.vector.AutoresetMode``).

``EcomVectorEnv(autoreset_mode=...)`` (or ``gym.make_vec(id, num_envs, autoreset_mode=...)``: Gymnasium's
``make_vec`` hands its keyword arguments to a vector entry point and refuses ``vector_kwargs`` for one)
behaves as ``gymnasium.vector.SyncVectorEnv`` of single envs in the same mode, step for step:

* ``NEXT_STEP`` (default): a session that ended is restarted at the next ``step``, whose action it ignores
  (nothing shown, zero reward, ``terminated`` and ``truncated`` False) and whose observation is the new
  session's first.
* ``SAME_STEP``: the step that ends a session restarts it at once; the step returns the new session's first
  observation and puts the last one in ``info["final_obs"]`` (an object array, ``None`` for sessions that go
  on) and the step's info in ``info["final_info"]`` (each key's array with a ``"_key"`` mask), with
  ``info["_final_obs"]`` / ``info["_final_info"]`` the ended sessions; the top-level info of an ended
  session is that of the new session (nothing shown yet, totals zero), as a single env's ``reset()`` gives.
* ``DISABLED``: nothing restarts by itself; the caller restarts ended sessions with
  ``reset(options={"reset_mask": mask})`` (``mask`` a ``(num_envs,)`` bool array) before stepping them again.

The core has one restart path for all three (``SimulationCore.reset(rows)`` then, at ``NEXT_STEP``, a step
that skips those rows): ``SAME_STEP`` steps and then restarts the ended rows and observes them; ``DISABLED``
restarts only what ``reset_mask`` names.

Gymnasium 1.0 has no ``AutoresetMode`` (1.1 added it; its vector envs are ``NEXT_STEP`` only): there this
module defines the same enum, so the three modes work on every supported Gymnasium.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Mapping

import numpy as np

from ecomsim.errors import suggest

try:
    from gymnasium.vector import AutoresetMode
except ImportError:  # Gymnasium 1.0

    class AutoresetMode(Enum):  # type: ignore[no-redef]
        """Gymnasium 1.1's ``AutoresetMode`` (same names and values), for Gymnasium 1.0."""

        NEXT_STEP = "NextStep"
        SAME_STEP = "SameStep"
        DISABLED = "Disabled"


def parse_autoreset_mode(value: Any) -> AutoresetMode:
    """``value`` as an :class:`AutoresetMode`: the enum, its value (``"SameStep"``) or its name (``"SAME_STEP"``,
    any case); else a ``ValueError`` naming the valid ones."""
    if isinstance(value, Enum) and type(value).__name__ == "AutoresetMode":
        value = value.value  # also Gymnasium's enum when ecomsim runs its own (1.0)
    if isinstance(value, str):
        for mode in AutoresetMode:
            if value in (mode.value, mode.name) or value.upper() == mode.name:
                return mode
    names = [m.name for m in AutoresetMode]
    raise ValueError(f"autoreset_mode must be one of {names} (gymnasium.vector.AutoresetMode or its name), "
                     f"got {value!r}.{suggest(str(value).upper(), names)}")


def reset_mask(options: Mapping[str, Any] | None, num_envs: int) -> np.ndarray | None:
    """``options["reset_mask"]`` checked as Gymnasium's vector envs check it (a ``(num_envs,)`` bool numpy array
    with a True somewhere), or ``None`` when absent."""
    if options is None or "reset_mask" not in options:
        return None
    mask = options["reset_mask"]
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"options['reset_mask'] must be a numpy array, got {type(mask).__name__}")
    if mask.shape != (num_envs,):
        raise ValueError(f"options['reset_mask'] must have shape (num_envs={num_envs},), got {mask.shape}")
    if mask.dtype != np.bool_:
        raise TypeError(f"options['reset_mask'] must have dtype bool, got {mask.dtype}")
    if not mask.any():
        raise ValueError("options['reset_mask'] must have at least one True (a sub-env to reset), got all False")
    return mask


def check_episode_limit(value: Any) -> int | None:
    """``max_episode_steps`` (what ``make_vec`` passes from a spec that has one): ``None`` or a positive int."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"max_episode_steps must be a positive integer or None, got {value!r}")
    return int(value)


def final_entries(obs: np.ndarray, info: dict[str, np.ndarray], ended: np.ndarray) -> dict[str, Any]:
    """``final_obs`` / ``final_info`` (with their ``_`` masks) of the sessions ``ended`` ``(N,)`` bool, laid out as
    ``SyncVectorEnv`` lays them out (values of other sessions: ``None`` / zeros); copies of ``obs`` and ``info``."""
    rows = np.flatnonzero(ended)
    final_obs = np.full(len(ended), None, dtype=object)
    for i in rows.tolist():
        final_obs[i] = obs[i].copy()
    final_info: dict[str, np.ndarray] = {}
    for key, value in info.items():
        arr = np.zeros_like(value)
        arr[rows] = value[rows]
        final_info[key], final_info[f"_{key}"] = arr, ended.copy()
    return {"final_obs": final_obs, "_final_obs": ended.copy(), "final_info": final_info, "_final_info": ended.copy()}
