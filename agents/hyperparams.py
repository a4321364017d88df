"""Hyperparameters checked against what Stable-Baselines3 accepts, before any model or env is built.

The valid keys are SB3's own: the parameters of ``PPO.__init__`` / ``DQN.__init__``
(read with ``inspect.signature``, so a new SB3 keyword is accepted the day SB3 adds
it), minus those the project sets itself (:data:`SET_BY_PROJECT`), plus the
project's ``lr_schedule``, ``hidden`` and ``num_envs``. Each value is checked by type
(the constructor's annotation: ``int``, ``float``, ``bool``, ``None``, DQN's
``(int, "step" | "episode")`` train frequency; Python objects such as buffer classes
cannot come from JSON) and by range (:data:`RANGES`: what SB3 rejects or what makes
no sense, e.g. a negative learning rate, gamma outside [0, 1], a PPO ``batch_size``
larger than the ``n_steps * num_envs`` rollout it is cut from). One ``ValueError``
names the key, the value and what is valid.
"""

from __future__ import annotations

import inspect
import math
import numbers
import types
import typing
from typing import Any

from ecomsim.errors import suggest

SET_BY_PROJECT = frozenset({"self", "policy", "env", "policy_kwargs", "tensorboard_log", "seed", "device", "verbose",
                            "_init_setup_model"})
PROJECT_KEYS = {"lr_schedule": ("constant", "linear"), "hidden": None, "num_envs": None}
INF = math.inf
#: (low, high, low inclusive, high inclusive) per key; keys absent here get the type check only
RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "learning_rate": (0.0, INF, False, False),
    "n_steps": (1, INF, True, False),
    "batch_size": (1, INF, True, False),
    "n_epochs": (1, INF, True, False),
    "gamma": (0.0, 1.0, True, True),
    "gae_lambda": (0.0, 1.0, True, True),
    "clip_range": (0.0, INF, False, False),
    "clip_range_vf": (0.0, INF, False, False),
    "vf_coef": (0.0, INF, True, False),
    "max_grad_norm": (0.0, INF, False, False),
    "target_kl": (0.0, INF, False, False),
    "stats_window_size": (1, INF, True, False),
    "buffer_size": (1, INF, True, False),
    "learning_starts": (0, INF, True, False),
    "tau": (0.0, 1.0, False, True),
    "train_freq": (1, INF, True, False),
    "target_update_interval": (1, INF, True, False),
    "exploration_fraction": (0.0, 1.0, True, True),
    "exploration_initial_eps": (0.0, 1.0, True, True),
    "exploration_final_eps": (0.0, 1.0, True, True),
    "hidden": (1, INF, True, False),
    "num_envs": (1, INF, True, False),
}
FORBIDDEN = {  # accepted by SB3's signature, refused here: why
    "use_sde": (True, "gSDE needs continuous (Box) actions; ecomsim's actions are Discrete / MultiDiscrete"),
    "optimize_memory_usage": (True, "SB3 refuses it with the time-limit handling the env needs (handle_timeout_termination)"),
}


def sb3_parameters(algo_cls: type) -> dict[str, inspect.Parameter]:
    """The keyword parameters of ``algo_cls.__init__`` a user may set (not those of :data:`SET_BY_PROJECT`)."""
    return {k: p for k, p in inspect.signature(algo_cls.__init__).parameters.items() if k not in SET_BY_PROJECT}


def _kinds(annotation: Any) -> set[str]:
    """JSON-expressible kinds of a constructor annotation: number, integer, bool, null, step_pair."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set().union(*(_kinds(a) for a in typing.get_args(annotation)))
    if annotation is bool:
        return {"bool"}
    if annotation is int:
        return {"integer"}
    if annotation is float:
        return {"number"}
    if annotation is type(None):
        return {"null"}
    if typing.get_origin(annotation) is tuple and typing.get_args(annotation) == (int, str):
        return {"step_pair"}
    return set()  # callables, classes, dicts: Python objects, not JSON


def _is(kind: str, value: Any) -> bool:
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    return {"bool": isinstance(value, bool),
            "integer": isinstance(value, numbers.Integral) and not isinstance(value, bool),
            "number": real and math.isfinite(float(value)),
            "null": value is None,
            "step_pair": (isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], numbers.Integral)
                          and not isinstance(value[0], bool) and value[0] >= 1 and value[1] in ("step", "episode"))}[kind]


WORDS = {"bool": "true or false", "integer": "an integer", "number": "a finite number", "null": "null",
         "step_pair": '[N >= 1, "step" or "episode"]'}


def check_hyperparams(algo: str, algo_cls: type, kwargs: dict[str, Any], num_envs: int, where: str = "hyperparams") -> None:
    """``ValueError`` naming the first key of ``kwargs`` SB3's ``algo_cls`` would not accept, its value and what is valid.

    Args:
        algo: ``ppo``, ``maskable_ppo`` or ``dqn`` (names the algorithm in messages).
        algo_cls: ``PPO``, ``MaskablePPO`` or ``DQN``.
        kwargs: the resolved hyperparameters (defaults with the user's overrides), plus
            ``lr_schedule``, ``hidden`` and ``num_envs``.
        num_envs: sessions stepped together (PPO's rollout is ``n_steps * num_envs``).
        where: the prefix naming the mapping in messages.
    """
    params = sb3_parameters(algo_cls)
    valid = sorted(set(params) | set(PROJECT_KEYS))
    unknown = [k for k in kwargs if k not in valid]
    if unknown:
        hint = suggest(str(unknown[0]), valid)
        raise ValueError(f"unknown {algo} hyperparameters {unknown}.{hint} Valid: {valid}")
    for key, value in kwargs.items():
        _check_value(key, value, params, f"{where}[{key!r}]")
    if algo in ("ppo", "maskable_ppo"):
        n_steps, batch = kwargs.get("n_steps", params["n_steps"].default), kwargs.get("batch_size", params["batch_size"].default)
        rollout = n_steps * num_envs
        if rollout < 2:
            raise ValueError(f"{where}['n_steps'] * num_envs must be > 1 (PPO normalises advantages over the rollout), "
                             f"got {n_steps} * {num_envs}")
        if batch < 2:
            raise ValueError(f"{where}['batch_size'] must be >= 2 for PPO (advantages are normalised per minibatch), got {batch}")
        if batch > rollout:
            raise ValueError(f"{where}['batch_size'] must be <= n_steps * num_envs = {n_steps} * {num_envs} = {rollout} "
                             f"(minibatches are cut from one rollout), got {batch}")
    if algo == "dqn" and kwargs.get("gradient_steps", 1) == 0:
        raise ValueError(f"{where}['gradient_steps'] must be >= 1 or -1 (as many as env steps), got 0: DQN would never train")


def _check_value(key: str, value: Any, params: dict[str, inspect.Parameter], name: str) -> None:
    if key in PROJECT_KEYS and PROJECT_KEYS[key] is not None:
        if value not in PROJECT_KEYS[key]:
            raise ValueError(f"{name} must be one of {list(PROJECT_KEYS[key])}, got {value!r}")
        return
    kinds = {"integer"} if key in PROJECT_KEYS else _kinds(params[key].annotation)
    if not kinds:
        raise ValueError(f"{name} cannot be set from JSON (SB3 expects a Python object: {params[key].annotation}), "
                         f"got {value!r}")
    if "number" in kinds:
        kinds = kinds | {"integer"}  # an int is a valid float
    if not any(_is(k, value) for k in kinds):
        want = " or ".join(WORDS[k] for k in sorted(kinds))
        why = " (SB3 takes a Python object there, which JSON cannot give)" if kinds == {"null"} else ""
        raise ValueError(f"{name} must be {want}{why}, got {value!r} ({type(value).__name__})")
    if key in FORBIDDEN and value == FORBIDDEN[key][0]:
        raise ValueError(f"{name} must be {not FORBIDDEN[key][0]}: {FORBIDDEN[key][1]}, got {value!r}")
    if key == "gradient_steps" and isinstance(value, numbers.Integral) and value < -1:
        raise ValueError(f"{name} must be >= 1 or -1 (as many as env steps), got {value!r}")
    if key in RANGES and isinstance(value, numbers.Real) and not isinstance(value, bool):
        low, high, low_in, high_in = RANGES[key]
        ok = (value >= low if low_in else value > low) and (value <= high if high_in else value < high)
        if not ok:
            lo, hi = ("[" if low_in else "(") + f"{low:g}", f"{high:g}" + ("]" if high_in else ")")
            raise ValueError(f"{name} must be in {lo}, {hi}, got {value!r}")
