"""What the env views accept as actions and seeds: exactly what their spaces and Gymnasium's signatures say.

numpy integers are accepted wherever Python ints are; floats are never rounded (``3.0`` is
not an action) and bools are not integers here. Every refusal names the argument, the
value and what is valid: a wrong type is a ``TypeError``, a wrong value or shape a
``ValueError`` (``ecomsim.errors``). The vector env's batched actions are checked by
``SimulationCore.check_actions``, with the same rules.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def check_seed(seed: Any, what: str = "seed") -> int | None:
    """``seed`` as a Python ``int`` or ``None``; else an error naming ``what``."""
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{what} must be an integer >= 0 or None, got {seed!r} ({type(seed).__name__})")
    if seed < 0:
        raise ValueError(f"{what} must be an integer >= 0, got {seed}")
    return int(seed)


def sub_env_seeds(seed: Any, num_envs: int) -> list[int | None] | None:
    """A vector env's ``reset(seed=...)`` as one seed per sub-env: ``seed + i`` for an int, the entries of a list
    of ``num_envs`` ints or ``None`` (kept), ``None`` for ``None``."""
    valid = f"seed must be an int, None or a list of num_envs={num_envs} ints or None"
    if seed is None:
        return None
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
        first = check_seed(seed)
        return [first + i for i in range(num_envs)]
    if not isinstance(seed, (list, tuple, np.ndarray)):
        raise TypeError(f"{valid}, got {seed!r} ({type(seed).__name__})")
    if len(seed) != num_envs:
        raise ValueError(f"{valid}, got a list of {len(seed)}")
    return [check_seed(s, f"seed[{i}]") for i, s in enumerate(seed)]


def check_action(action: Any, mode: str, num_candidates: int, slate_size: int) -> np.ndarray:
    """One session's ``action`` as ``(1, slate_size)`` int64 candidate indexes, or an error saying what is valid.

    What the action space's ``contains`` accepts, and nothing else: an integer (Python or numpy, or a 0-d
    integer array) for ``Discrete`` (``mode="recommend"``), not a one-element list, a float or a bool;
    integers of shape ``(slate_size,)`` for ``MultiDiscrete`` (``mode="slate"``).
    """
    m, k = num_candidates, slate_size
    try:
        arr = np.asarray(action)
    except (ValueError, TypeError):  # ragged nested sequences
        raise TypeError(f"action must be an integer candidate index or a slate of them, got {action!r}") from None
    if mode == "recommend":
        valid = f"an integer candidate index in [0, {m - 1}]"
        if arr.shape != ():
            hint = " (a Discrete action is a scalar: pass the index itself)" if arr.size == 1 else ""
            raise ValueError(f"action must be one candidate index, an integer in [0, {m - 1}], got shape {arr.shape}{hint}")
        if arr.dtype.kind not in "iu":
            shown = action.item() if isinstance(action, np.generic) else action
            raise TypeError(f"action must be {valid}, got {shown!r} ({type(action).__name__})")
        if not 0 <= arr < m:
            raise ValueError(f"action must be {valid}, got {arr.item()}")
        return arr.reshape(1, 1).astype(np.int64)
    if arr.shape != (k,):
        raise ValueError(f"action must have shape (slate_size={k},) with integers in [0, {m - 1}], got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"action must be integers in [0, {m - 1}] (candidate indexes), got dtype {arr.dtype}")
    bad = (arr < 0) | (arr >= m)
    if bad.any():
        raise ValueError(f"action must be candidate indexes in [0, {m - 1}], got {arr[bad][:5].tolist()}")
    return arr.reshape(1, k).astype(np.int64)
