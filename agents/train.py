"""Train SB3 PPO or DQN on an ecomsim env: one function a script can call.

:func:`train` validates everything first (the config, the hyperparameters against
SB3's constructor, the output directory, the memory the run needs), then builds the
native VecEnv (``agents.vec_env``), the candidate-scoring policy (``agents.policies``)
with the defaults of ``agents.defaults``, and learns with a progress bar, TensorBoard
under ``<out>/tb`` (SB3's tags plus ``ecom/*`` and ``eval/*``) and a checkpoint every
``checkpoint_every`` steps. It stops early, after saving a checkpoint, when
``should_stop()`` turns true (the scripts' Ctrl-C and SIGTERM handler) or on a
``KeyboardInterrupt``. ``resume=True`` continues from ``<out>/checkpoint.pt``. Files
and their format: ``agents.model_files`` (weights and JSON, never a pickle).

A resumed run restarts its sessions from seeds ``seed + num_timesteps + i`` (the
checkpoint restores the policy, the optimizer, SB3's counters and RNG states), so
resuming one checkpoint twice gives the same run.
"""

from __future__ import annotations

import dataclasses
import numbers
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from agents import memory
from agents.callbacks import CheckpointCallback, EcomMetricsCallback, PeriodicEvalCallback
from agents.defaults import (DQN_DEFAULTS, PPO_DEFAULTS, RETENTION_DQN_DEFAULTS, RETENTION_PPO_DEFAULTS,
                             STORE_PPO_DEFAULTS)
from agents.evaluation import make_eval_env
from agents.hyperparams import check_hyperparams
from agents.checkpoint import load_checkpoint, save_checkpoint
from agents.model_files import (CHECKPOINT, LEGACY_CHECKPOINT, MODEL, PICKLE_WARNING, STATE, SavedAgent, agent_card,
                                check_fits, load_agent, save_agent)
from agents.policies import obs_layout
from agents.store_train import (ALGO_NAMES, RetentionMetricsCallback, StoreMetricsCallback, algo_class,
                                is_retention_env, is_store_env, make_store_vec_env,
                                policy_setup)
from agents.vec_env import EcomSB3VecEnv
from ecomsim.cards import read_json
from ecomsim.config import EnvConfig
from ecomsim.assembly import build_core, env_spaces
from ecomsim.errors import TrainingStopped
from ecomsim.registration import env_kwargs, lifecycle_env_kwargs, store_env_kwargs

ALGOS = {"ppo": PPO, "dqn": DQN}  # and "maskable_ppo": sb3-contrib's MaskablePPO, imported when asked for


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
        algo: ``ppo``, ``dqn`` (needs ``Recommend-v0``) or ``maskable_ppo`` (sb3-contrib's
            ``MaskablePPO``: a session id with ``inventory``, out-of-stock candidates masked).
        env_id: a registered ecomsim id (``ecomsim/Inventory-v0``: PPO with an MLP policy).
        env_options: ``EnvConfig`` overrides (``user_model``, ``catalog``, ``channel``, ``inventory``,
            ...), or for ``Inventory-v0`` its ``InventoryConfig`` / ``StoreConfig`` options.
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
        if self.algo not in ALGO_NAMES:
            raise ValueError(f"algo must be one of {list(ALGO_NAMES)}, got {self.algo!r}")
        if self.algo == "dqn" and self.env_id != "ecomsim/Recommend-v0" and not is_retention_env(self.env_id):
            raise ValueError(f"algo='dqn' needs a Discrete action space (ecomsim/Recommend-v0), got env_id={self.env_id!r}")
        if is_store_env(self.env_id) or is_retention_env(self.env_id):
            valid = ("ppo", "dqn") if is_retention_env(self.env_id) else ("ppo",)
            if self.algo not in valid:
                raise ValueError(f"{self.env_id} trains with algo in {list(valid)} (an MLP over its state), "
                                 f"got {self.algo!r}")
            from ecomsim.lifecycle.retention_config import RetentionConfig
            from ecomsim.store.inventory_config import InventoryConfig

            (InventoryConfig if is_store_env(self.env_id) else RetentionConfig).from_kwargs(self.options())
        else:  # the id and every option, before any work
            config = EnvConfig.from_kwargs(self.options())
            if self.algo == "maskable_ppo" and config.inventory is None:
                raise ValueError("algo='maskable_ppo' masks the candidates out of stock: it needs the env option "
                                 "inventory (e.g. {\"inventory\": {}}), got none")
            if self.algo == "maskable_ppo":
                algo_class("maskable_ppo")  # sb3-contrib installed?
        resolve_device(self.device)  # an unknown device or CUDA without a GPU fails before any work
        if self.timesteps is None:
            self.timesteps = int(self.defaults()["timesteps"])
        if not isinstance(self.hyperparams, dict):
            raise TypeError(f"AgentTrainConfig.hyperparams must be a dict, got {self.hyperparams!r}")
        counts = {"timesteps": (self.timesteps, 1), "checkpoint_every": (self.checkpoint_every, 1),
                  "eval_every": (self.eval_every, 0), "eval_sessions": (self.eval_sessions, 1),
                  "num_envs": (self.num_envs, 1), "hyperparams['num_envs']": (self.hyperparams.get("num_envs"), 1),
                  "hyperparams['hidden']": (self.hyperparams.get("hidden"), 1)}
        for name, (value, low) in counts.items():
            if value is None:
                continue  # the algorithm's default
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"AgentTrainConfig.{name} must be an integer >= {low}, got {value!r}")
        r = self.resolved()
        check_hyperparams(self.algo, algo_class(self.algo), {**r["algo_kwargs"], **self.hyperparams}, r["num_envs"],
                          where="AgentTrainConfig.hyperparams")

    def defaults(self) -> dict[str, Any]:
        if is_store_env(self.env_id):
            return STORE_PPO_DEFAULTS
        if is_retention_env(self.env_id):
            return RETENTION_DQN_DEFAULTS if self.algo == "dqn" else RETENTION_PPO_DEFAULTS
        return DQN_DEFAULTS if self.algo == "dqn" else PPO_DEFAULTS

    def options(self) -> dict[str, Any]:
        """The env's keyword arguments: the id's own with ``env_options`` on top."""
        kwargs = (store_env_kwargs if is_store_env(self.env_id) else
                  lifecycle_env_kwargs if is_retention_env(self.env_id) else env_kwargs)
        return kwargs(self.env_id, **self.env_options)

    def resolved(self) -> dict[str, Any]:
        """Algorithm kwargs after overrides, plus ``num_envs`` and ``hidden``."""
        d = self.defaults()
        kwargs = dict(d["algo_kwargs"])
        kwargs.update({k: v for k, v in self.hyperparams.items() if k not in ("num_envs", "hidden")})
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


def make_model(config: AgentTrainConfig, env, tb_dir: Path | None):
    r = config.resolved()
    kwargs = dict(r["algo_kwargs"])
    if isinstance(kwargs.get("train_freq"), list):  # JSON has no tuples; SB3 wants (n, "step" | "episode")
        kwargs["train_freq"] = tuple(kwargs["train_freq"])
    schedule = kwargs.pop("lr_schedule", "constant")
    if schedule == "linear":
        kwargs["learning_rate"] = linear_schedule(float(kwargs["learning_rate"]))
    elif schedule != "constant":
        raise ValueError(f"lr_schedule must be 'constant' or 'linear', got {schedule!r}")
    policy, policy_kwargs = policy_setup(config.algo, config.env_id, env, r["hidden"])
    return algo_class(config.algo)(
        policy,
        env,
        policy_kwargs=policy_kwargs,
        tensorboard_log=str(tb_dir) if tb_dir else None,
        seed=config.seed,
        device=resolve_device(config.device),
        verbose=0,
        **kwargs,
    )


def load_model(path: str | Path, algo: str | None = None, device: str = "auto", trust_pickle: bool = False) -> SavedAgent:
    """Load a trained agent (``model.pt`` + its card ``model.json``) without unpickling anything.

    ``trust_pickle=True`` also loads a Stable-Baselines3 zip (``model.save``), which runs
    whatever its pickled ``data`` entry holds: only for files you trust (a warning says so).
    See :func:`agents.model_files.load_agent` for the errors.
    """
    return load_agent(path, algo, device=resolve_device(device), trust_pickle=trust_pickle)


def check_output_dir(out_dir: Path, resume: bool) -> None:
    """``out_dir`` must be a directory (or not exist); without ``resume`` it must not hold a run already."""
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"output directory {str(out_dir)!r} is an existing file; expected a directory (--out)")
    if not resume:
        held = [n for n in (CHECKPOINT, MODEL, LEGACY_CHECKPOINT) if (out_dir / n).exists()]
        if held:
            raise FileExistsError(f"output directory {str(out_dir)!r} already holds a run ({', '.join(held)}); continue it "
                                  "with --resume (resume=True), or write elsewhere with --out, or delete it")


def check_training_memory(config: AgentTrainConfig) -> memory.Estimate | None:
    """``ValueError`` naming ``num_envs`` when the run cannot fit in memory (see ``agents.memory``).

    A store env is skipped: its observations are a few dozen floats, its sessions live in one core per store.
    """
    if is_store_env(config.env_id) or is_retention_env(config.env_id):
        return None
    r = config.resolved()
    core = build_core(EnvConfig.from_kwargs(env_kwargs(config.env_id, **config.env_options)), 1)
    lay = obs_layout(core)
    obs_dim = int(env_spaces(core)[1].shape[0])
    options = env_kwargs(config.env_id, **config.env_options)
    eval_envs = min(256, config.eval_sessions) if config.eval_every else 0

    def at(n: int, per: int | None = None) -> memory.Estimate:
        return memory.training_estimate(config.algo, n, r["algo_kwargs"], options, obs_dim, lay["num_candidates"],
                                        lay["context_dim"], r["hidden"], eval_envs, per_session=per)

    quick = at(r["num_envs"], memory.QUICK_BYTES_PER_SESSION).total
    return memory.check_fits(at, "num_envs", r["num_envs"], quick)


class _StopWhenAsked(BaseCallback):
    """Ends ``learn`` at the next env step once ``should_stop()`` is true."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        super().__init__()
        self.should_stop = should_stop

    def _on_step(self) -> bool:
        return not self.should_stop()


def train(config: AgentTrainConfig, out_dir: str | Path, resume: bool = False, extra_callbacks: list | None = None,
          should_stop: Callable[[], bool] | None = None, trust_pickle: bool = False) -> tuple[Any, dict[str, Any]]:
    """Train (or resume) and return ``(model, summary)``; the agent is also saved as ``<out>/model.pt`` + ``model.json``.

    Args:
        config: the run's options (validated on construction).
        out_dir: output directory (created); without ``resume`` it must not hold a run.
        resume: continue from ``<out>/checkpoint.pt`` up to ``config.timesteps``.
        extra_callbacks: SB3 callbacks appended to the built-in ones.
        should_stop: polled every env step; when true, training saves a checkpoint and
            raises :class:`~ecomsim.errors.TrainingStopped`.
        trust_pickle: allow resuming from an earlier release's ``checkpoint.zip`` (an SB3
            zip, unpickled: only for runs you trust).

    Raises:
        FileNotFoundError: ``resume`` without a checkpoint in ``out_dir``.
        FileExistsError / NotADirectoryError: ``out_dir`` holds a run (without ``resume``) or is a file.
        ValueError: the run does not fit in memory; the checkpoint is of another algorithm, env or policy.
        TrainingStopped: ``should_stop()`` turned true; the checkpoint is saved.
        KeyboardInterrupt: after saving a checkpoint, so ``--resume`` can continue.
    """
    out_dir = Path(out_dir)
    check_output_dir(out_dir, resume)
    check_training_memory(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    store = is_store_env(config.env_id) or is_retention_env(config.env_id)  # an MLP over a state, its episodes its score
    n = config.resolved()["num_envs"]
    env = (make_store_vec_env(n, config.options(), config.env_id) if store
           else EcomSB3VecEnv(n, env_id=config.env_id, **config.env_options))
    model, state = _start(config, env, out_dir, resume, trust_pickle)
    metrics_cb = (RetentionMetricsCallback() if is_retention_env(config.env_id) else StoreMetricsCallback() if store
                  else EcomMetricsCallback())
    eval_cb = None
    callbacks: list = [metrics_cb]
    if config.eval_every and not store:  # a store's score is its own episodes' (ecom/profit_per_day ...)
        eval_kwargs = env_kwargs(config.env_id, **config.env_options)
        eval_cb = PeriodicEvalCallback(lambda: make_eval_env(eval_kwargs, min(256, config.eval_sessions)),
                                       config.eval_every, config.eval_sessions, seed=config.seed + 10_000,
                                       history=state.get("eval_history", []), should_stop=should_stop)
        callbacks.append(eval_cb)
    start, before = time.time(), float(state.get("train_seconds", 0.0))

    def run_state() -> dict[str, Any]:
        return {"eval_history": eval_cb.history if eval_cb else [], "train_seconds": before + time.time() - start,
                "config": config.to_dict()}

    def card() -> dict[str, Any]:
        return agent_card(model, algo=config.algo, env_id=config.env_id,
                          env_options=config.options(), hyperparams=config.resolved(),
                          seed=config.seed)

    def checkpoint() -> Path:
        return save_checkpoint(model, out_dir, card(), run_state())

    callbacks.append(CheckpointCallback(config.checkpoint_every, checkpoint))
    if should_stop is not None:
        callbacks.append(_StopWhenAsked(should_stop))
    callbacks.extend(extra_callbacks or [])
    remaining = config.timesteps - model.num_timesteps
    if remaining > 0:
        try:
            model.learn(remaining, callback=CallbackList(callbacks), tb_log_name=config.algo,
                        reset_num_timesteps=not resume, progress_bar=config.progress_bar)
        except KeyboardInterrupt:
            checkpoint()
            print(f"\ninterrupted at {model.num_timesteps} steps; checkpoint saved in {out_dir} (continue with --resume)")
            raise
    if should_stop is not None and should_stop() and model.num_timesteps < config.timesteps:
        raise TrainingStopped(checkpoint(), f"{model.num_timesteps:,} of {config.timesteps:,} steps")
    checkpoint()
    save_agent(model, out_dir / MODEL, card())
    summary = {
        "timesteps": int(model.num_timesteps),
        "train_seconds": round(run_state()["train_seconds"], 1),
        "eval_history": eval_cb.history if eval_cb else [],
        "rollout_history": metrics_cb.history,
        "resolved": config.resolved(),
    }
    return model, summary


def _start(config: AgentTrainConfig, env, out_dir: Path, resume: bool,
           trust_pickle: bool) -> tuple[Any, dict[str, Any]]:
    """A fresh seeded model, or the checkpoint of ``out_dir`` with its saved state (eval history, seconds so far)."""
    tb_dir = out_dir / "tb"
    if not resume:
        env.seed(config.seed)
        return make_model(config, env, tb_dir), {}
    if trust_pickle and not (out_dir / CHECKPOINT).is_file() and (out_dir / LEGACY_CHECKPOINT).is_file():
        return _start_legacy(config, env, out_dir)
    ckpt = load_checkpoint(out_dir, config.algo)
    where = f"checkpoint {str(ckpt.path)!r}"
    if ckpt.card["env_id"] != config.env_id:
        raise ValueError(f"{where} was trained on {ckpt.card['env_id']}; resume it with --env-id {ckpt.card['env_id']} "
                         f"(got {config.env_id})")
    check_fits(ckpt.card, where, config.env_id, env.action_space, env.observation_space)
    model = make_model(config, env, tb_dir)
    ckpt.restore(model)
    env.seed(config.seed + model.num_timesteps)
    flat = lambda r: {**r.get("algo_kwargs", {}), **{k: v for k, v in r.items() if k != "algo_kwargs"}}  # noqa: E731
    was, now = flat(ckpt.card["hyperparams"]), flat(config.resolved())
    changed = {k: (was.get(k), v) for k, v in now.items() if was.get(k) != v}
    if changed:
        print(f"note: resuming {where} with other settings than it was trained with (was, now): {changed}")
    return model, ckpt.run_state


def _start_legacy(config: AgentTrainConfig, env: EcomSB3VecEnv, out_dir: Path) -> tuple[Any, dict[str, Any]]:
    """Resume from an earlier release's SB3 zip checkpoint (``trust_pickle``: it is unpickled)."""
    path = out_dir / LEGACY_CHECKPOINT
    warnings.warn(f"{PICKLE_WARNING.format(path=str(path))}; loading it because trust_pickle=True", UserWarning, stacklevel=3)
    try:
        model = algo_class(config.algo).load(path, env=env, device=resolve_device(config.device))
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise ValueError(f"{str(path)!r} is not a loadable SB3 {config.algo.upper()} checkpoint: {exc}") from None
    model.tensorboard_log = str(out_dir / "tb")
    state = read_json(out_dir / STATE, "run state") if (out_dir / STATE).exists() else {}
    return model, state if isinstance(state, dict) else {}
