"""Train SB3 PPO or DQN on an ecomsim env: one function a script can call.

:func:`train` builds the native VecEnv (``agents.vec_env``), the candidate-scoring
policy (``agents.policies``) with the defaults of ``agents.defaults``, and learns
with a progress bar, TensorBoard under ``<out>/tb`` (SB3's tags plus ``ecom/*`` and
``eval/*``), a checkpoint every ``checkpoint_every`` steps, and Ctrl-C saving a
checkpoint before it stops. ``resume=True`` continues from ``<out>/checkpoint.zip``.
"""

from __future__ import annotations

import dataclasses
import numbers
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.callbacks import CallbackList

from agents.callbacks import CHECKPOINT, CheckpointCallback, EcomMetricsCallback, PeriodicEvalCallback, load_state, save_checkpoint
from agents.defaults import DQN_DEFAULTS, PPO_DEFAULTS
from agents.evaluation import make_eval_env
from agents.policies import CandidateActorCriticPolicy, CandidateDQNPolicy, obs_layout
from agents.vec_env import EcomSB3VecEnv
from ecomsim.config import EnvConfig
from ecomsim.registration import env_kwargs

ALGOS = {"ppo": PPO, "dqn": DQN}


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; ``cuda`` without a GPU is an error."""
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but torch sees no CUDA device; use --device cpu or auto")
    return device


@dataclass
class AgentTrainConfig:
    """Everything a training run needs (JSON-friendly; saved in ``results.json``).

    Attributes:
        algo: ``ppo`` or ``dqn`` (DQN needs ``Recommend-v0``).
        env_id: a registered ecomsim id.
        env_options: ``EnvConfig`` overrides (``user_model``, ``catalog``, ``channel``, ...).
        timesteps: total env steps to train (a resumed run trains up to this total);
            ``None``: the algorithm's default.
        seed: seeds SB3, the env's sub-envs (``seed + i``) and the evaluation.
        device: ``auto``, ``cpu`` or ``cuda``.
        num_envs: sessions stepped together during training.
        hyperparams: overrides of ``agents.defaults`` for the algorithm.
        checkpoint_every: env steps between checkpoints.
        eval_every: env steps between periodic evaluations (0: none).
        eval_sessions: sessions per periodic evaluation.
        progress_bar: show SB3's tqdm/rich progress bar.
    """

    algo: str = "ppo"
    env_id: str = "ecomsim/Recommend-v0"
    env_options: dict[str, Any] = field(default_factory=dict)
    timesteps: int | None = None
    seed: int = 0
    device: str = "auto"
    num_envs: int | None = None
    hyperparams: dict[str, Any] = field(default_factory=dict)
    checkpoint_every: int = 100_000
    eval_every: int = 100_000
    eval_sessions: int = 1000
    progress_bar: bool = True

    def __post_init__(self) -> None:
        if self.algo not in ALGOS:
            raise ValueError(f"algo must be one of {list(ALGOS)}, got {self.algo!r}")
        if self.algo == "dqn" and self.env_id != "ecomsim/Recommend-v0":
            raise ValueError(f"algo='dqn' needs a Discrete action space (ecomsim/Recommend-v0), got env_id={self.env_id!r}")
        EnvConfig.from_kwargs(env_kwargs(self.env_id, **self.env_options))  # the id and every option, before any work
        resolve_device(self.device)  # an unknown device or CUDA without a GPU fails before any work
        if self.timesteps is None:
            self.timesteps = int(self.defaults()["timesteps"])
        defaults = self.defaults()
        unknown = [k for k in self.hyperparams if k not in defaults["algo_kwargs"] and k not in ("num_envs", "hidden")]
        if unknown:
            raise ValueError(f"unknown {self.algo} hyperparameters {unknown}; valid: {sorted(defaults['algo_kwargs'])} + ['hidden', 'num_envs']")
        counts = {"timesteps": (self.timesteps, 1), "checkpoint_every": (self.checkpoint_every, 1),
                  "eval_every": (self.eval_every, 0), "eval_sessions": (self.eval_sessions, 1),
                  "num_envs": (self.num_envs, 1), "hyperparams['num_envs']": (self.hyperparams.get("num_envs"), 1),
                  "hyperparams['hidden']": (self.hyperparams.get("hidden"), 1)}
        for name, (value, low) in counts.items():
            if value is None:
                continue  # the algorithm's default
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"AgentTrainConfig.{name} must be an integer >= {low}, got {value!r}")

    def defaults(self) -> dict[str, Any]:
        return PPO_DEFAULTS if self.algo == "ppo" else DQN_DEFAULTS

    def resolved(self) -> dict[str, Any]:
        """Algorithm kwargs after overrides, plus ``num_envs`` and ``hidden``."""
        d = self.defaults()
        kwargs = dict(d["algo_kwargs"])
        kwargs.update({k: v for k, v in self.hyperparams.items() if k in kwargs})
        num_envs = self.num_envs if self.num_envs is not None else self.hyperparams.get("num_envs", d["num_envs"])
        hidden = self.hyperparams.get("hidden", d["hidden"])
        return {"algo_kwargs": kwargs, "num_envs": int(num_envs), "hidden": int(hidden)}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class linear_schedule:
    """Learning rate falling linearly from ``initial`` to 0 over the run (picklable, unlike a lambda)."""

    def __init__(self, initial: float) -> None:
        self.initial = initial

    def __call__(self, progress_remaining: float) -> float:
        return self.initial * progress_remaining


def make_model(config: AgentTrainConfig, env: EcomSB3VecEnv, tb_dir: Path | None):
    r = config.resolved()
    kwargs = dict(r["algo_kwargs"])
    schedule = kwargs.pop("lr_schedule", "constant")
    if schedule == "linear":
        kwargs["learning_rate"] = linear_schedule(float(kwargs["learning_rate"]))
    elif schedule != "constant":
        raise ValueError(f"lr_schedule must be 'constant' or 'linear', got {schedule!r}")
    policy = CandidateActorCriticPolicy if config.algo == "ppo" else CandidateDQNPolicy
    return ALGOS[config.algo](
        policy,
        env,
        policy_kwargs=dict(obs_layout(env.core), hidden=r["hidden"]),
        tensorboard_log=str(tb_dir) if tb_dir else None,
        seed=config.seed,
        device=resolve_device(config.device),
        verbose=0,
        **kwargs,
    )


def load_model(path: str | Path, algo: str, device: str = "auto", env=None):
    """Load a saved PPO / DQN zip; errors name the file and the algorithm expected."""
    path = Path(path)
    if algo not in ALGOS:
        raise ValueError(f"algo must be one of {list(ALGOS)}, got {algo!r}")
    if not path.exists() and not path.with_suffix(".zip").exists():
        raise FileNotFoundError(f"no {algo} model at {str(path)!r}")
    try:
        return ALGOS[algo].load(path, env=env, device=resolve_device(device))
    except (KeyError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{str(path)!r} is not a loadable SB3 {algo.upper()} model: {exc}") from exc


def train(config: AgentTrainConfig, out_dir: str | Path, resume: bool = False,
          extra_callbacks: list | None = None) -> tuple[Any, dict[str, Any]]:
    """Train (or resume) and return ``(model, summary)``; the model is also saved as ``<out>/model.zip``.

    ``extra_callbacks`` are SB3 callbacks appended to the built-in ones.

    Raises:
        FileNotFoundError: ``resume`` without a checkpoint in ``out_dir``.
        KeyboardInterrupt: after saving a checkpoint, so ``--resume`` can continue.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = EcomSB3VecEnv(config.resolved()["num_envs"], env_id=config.env_id, **config.env_options)
    model, state = _start(config, env, out_dir, resume)
    metrics_cb = EcomMetricsCallback()
    eval_cb = None
    callbacks: list = [metrics_cb]
    if config.eval_every:
        eval_kwargs = env_kwargs(config.env_id, **config.env_options)
        eval_cb = PeriodicEvalCallback(lambda: make_eval_env(eval_kwargs, min(256, config.eval_sessions)),
                                       config.eval_every, config.eval_sessions, seed=config.seed + 10_000,
                                       history=state.get("eval_history", []))
        callbacks.append(eval_cb)
    start, before = time.time(), float(state.get("train_seconds", 0.0))

    def run_state() -> dict[str, Any]:
        return {"eval_history": eval_cb.history if eval_cb else [], "train_seconds": before + time.time() - start,
                "config": config.to_dict()}

    callbacks.append(CheckpointCallback(out_dir, config.checkpoint_every, run_state))
    callbacks.extend(extra_callbacks or [])
    remaining = config.timesteps - model.num_timesteps
    if remaining > 0:
        try:
            model.learn(remaining, callback=CallbackList(callbacks), tb_log_name=config.algo,
                        reset_num_timesteps=not resume, progress_bar=config.progress_bar)
        except KeyboardInterrupt:
            save_checkpoint(model, out_dir, run_state())
            print(f"\ninterrupted at {model.num_timesteps} steps; checkpoint saved in {out_dir} (continue with --resume)")
            raise
    save_checkpoint(model, out_dir, run_state())
    model.save(out_dir / "model.zip")
    summary = {
        "timesteps": int(model.num_timesteps),
        "train_seconds": round(run_state()["train_seconds"], 1),
        "eval_history": eval_cb.history if eval_cb else [],
        "rollout_history": metrics_cb.history,
        "resolved": config.resolved(),
    }
    return model, summary


def _start(config: AgentTrainConfig, env: EcomSB3VecEnv, out_dir: Path, resume: bool) -> tuple[Any, dict[str, Any]]:
    """A fresh seeded model, or the checkpoint of ``out_dir`` with its saved state (eval history, seconds so far)."""
    tb_dir = out_dir / "tb"
    if not resume:
        env.seed(config.seed)
        return make_model(config, env, tb_dir), {}
    state = load_state(out_dir)
    if state is None:
        raise FileNotFoundError(f"--resume: no {CHECKPOINT} and state.json in {str(out_dir)!r}; train without --resume first")
    model = ALGOS[config.algo].load(out_dir / CHECKPOINT, env=env, device=resolve_device(config.device))
    model.tensorboard_log = str(tb_dir)
    return model, state
