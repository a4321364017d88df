"""Train Ray RLlib PPO on an ecomsim env, with the outputs of the SB3 training (``scripts/train_rllib.py``).

The env runners step the native batched env (``ecomsim.integrations.rllib``). A run writes
what ``agents.train`` and ``scripts/train_agent.py`` write, so the two compare side by
side: TensorBoard under ``<out>/tb`` with ``ecom/*`` (``ecomsim.metrics.TAGS``, the sessions
the runners finished in each iteration) and ``eval/*`` (``EVAL_TAGS``, the periodic
evaluation on fixed seeded sessions), the learning curve and the training sessions in the
summary that ``results.json`` and ``report.png`` are made from. The agent is an RLlib
checkpoint directory, ``<out>/checkpoint`` (``Algorithm.from_checkpoint`` loads it), written
at the end and when a stop is asked for.

Nothing here is imported by the rest of ``agents``: Ray is an optional extra.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from agents.baselines import Policy
from ecomsim.config import EnvConfig
from ecomsim.errors import TrainingStopped
from ecomsim.metrics import EVAL_TAGS, TAGS
from ecomsim.registration import env_kwargs


@dataclass
class RLlibTrainConfig:
    """One RLlib PPO run (JSON-friendly; saved in ``results.json``).

    Attributes:
        env_id: a registered ecomsim id; env_options: ``EnvConfig`` overrides.
        timesteps: env steps to train (whole iterations: the last one may pass it).
        seed: seeds RLlib, the runners' envs, the evaluation (``seed + 10_000``).
        num_env_runners: remote env runner processes (0: sampling in the driver).
        num_envs_per_env_runner: sessions each runner steps together (one native vector env).
        num_workers: processes each runner's vector env splits its sessions across (``ecomsim.shards``).
        hidden: width of the policy's and value function's two hidden layers.
        train_batch_size: env steps per PPO iteration (the SB3 default's 32 envs x 64 steps).
        eval_every: env steps between periodic evaluations (0: only the final scores).
        eval_sessions: sessions per periodic evaluation.
        address: a Ray cluster to join (``"auto"``: the one ``ray start`` runs here); None: a local one.
    """

    env_id: str = "ecomsim/Recommend-v0"
    env_options: dict[str, Any] = field(default_factory=dict)
    timesteps: int = 200_000
    seed: int = 0
    num_env_runners: int = 2
    num_envs_per_env_runner: int = 16
    num_workers: int = 1
    hidden: int = 64
    train_batch_size: int = 2048
    eval_every: int = 50_000
    eval_sessions: int = 1000
    address: str | None = None

    def __post_init__(self) -> None:
        EnvConfig.from_kwargs(env_kwargs(self.env_id, **self.env_options))  # the id and every option
        for name, low in (("timesteps", 1), ("num_env_runners", 0), ("num_envs_per_env_runner", 1),
                          ("num_workers", 1), ("hidden", 1), ("train_batch_size", 1), ("eval_every", 0),
                          ("eval_sessions", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"RLlibTrainConfig.{name} must be an integer >= {low}, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def algo_config(self):
        """The RLlib ``PPOConfig`` of this run."""
        from ecomsim.integrations.rllib import ppo_config

        return ppo_config(self.env_id, self.env_options, num_env_runners=self.num_env_runners,
                          num_envs_per_env_runner=self.num_envs_per_env_runner, num_workers=self.num_workers,
                          seed=self.seed, hidden=self.hidden, train_batch_size=self.train_batch_size,
                          minibatch_size=min(512, self.train_batch_size), timesteps=self.timesteps)


class RLlibPolicy(Policy):
    """An RLlib module as a :class:`~agents.baselines.Policy`: the mode of its action distribution."""

    def __init__(self, module, name: str = "ppo") -> None:
        self.module, self.name = module, name

    def act(self, obs: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self.module.forward_inference({"obs": torch.as_tensor(obs)})
        dist = self.module.get_inference_action_dist_cls().from_logits(out["action_dist_inputs"])
        return dist.to_deterministic().sample().cpu().numpy()


def start_ray(address: str | None) -> None:
    """Join ``address`` (a cluster) or start a local Ray without its dashboard; no-op when Ray is up."""
    import ray

    if ray.is_initialized():
        return
    if address is None:
        ray.init(include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=address, log_to_driver=False)


def env_steps(result: dict[str, Any]) -> int:
    """Env steps sampled so far (RLlib's lifetime counter in an iteration's result)."""
    return int(result.get("num_env_steps_sampled_lifetime") or result["env_runners"]["num_env_steps_sampled_lifetime"])


def train_rllib(config: RLlibTrainConfig, out: Path,
                should_stop: Callable[[], bool] | None = None) -> tuple[Any, dict[str, Any]]:
    """Train; return ``(algorithm, summary)`` (summary keys as :func:`agents.train.train`'s).

    Raises:
        TrainingStopped: ``should_stop()`` turned true; the checkpoint is saved.
    """
    from torch.utils.tensorboard import SummaryWriter

    from agents.evaluation import evaluate, make_eval_env
    from ecomsim.integrations.rllib import session_metrics_of

    start_ray(config.address)
    algo = config.algo_config().build_algo()
    writer = SummaryWriter(str(out / "tb"))
    options = env_kwargs(config.env_id, **config.env_options)
    eval_env = make_eval_env(options, min(256, config.eval_sessions)) if config.eval_every else None
    history: list[dict[str, Any]] = []
    rollouts: list[dict[str, float]] = []
    rates: list[float] = []
    start, steps, next_eval = time.time(), 0, config.eval_every

    def run_eval() -> None:
        result = evaluate(RLlibPolicy(algo.get_module()), eval_env, config.eval_sessions, seed=config.seed + 10_000)
        history.append({"timesteps": steps, **{k: e.to_dict() for k, e in result.metrics.items()}})
        for name, est in result.metrics.items():
            writer.add_scalar(EVAL_TAGS[name], est.value, steps)

    try:
        while steps < config.timesteps:
            result = algo.train()
            steps = env_steps(result)
            rates.append(result["env_runners"]["num_env_steps_sampled"] / result["time_this_iter_s"])
            metrics = session_metrics_of(result)
            if metrics is not None:
                rollouts.append({"timesteps": steps, **metrics})
                for name, value in metrics.items():
                    writer.add_scalar(TAGS[name], value, steps)
            if eval_env is not None and steps >= next_eval:
                next_eval += config.eval_every
                run_eval()
            if should_stop is not None and should_stop():
                checkpoint = algo.save_to_path(str((out / "checkpoint").resolve()))
                raise TrainingStopped(checkpoint, f"{steps:,} of {config.timesteps:,} steps")
        if eval_env is not None and (not history or history[-1]["timesteps"] < steps):
            run_eval()
        algo.save_to_path(str((out / "checkpoint").resolve()))
    finally:
        writer.close()
    return algo, {"resolved": config.to_dict(), "timesteps": steps, "train_seconds": round(time.time() - start, 1),
                  "eval_history": history, "rollout_history": rollouts,
                  "steps_per_s": round(float(np.median(rates[1:] or rates)))}


def throughput(env_id: str, env_options: dict[str, Any], num_env_runners: int, num_envs: int,
               iterations: int, seed: int = 0, vectorize: str = "vector_entry_point") -> dict[str, float]:
    """Env steps/s of RLlib PPO with ``num_env_runners`` runners sharing ``num_envs`` sessions (scripts/benchmark.py).

    ``train``: env steps per second of whole iterations (sampling and learning, like SB3's PPO
    rows), the median over ``iterations`` after one warm-up iteration (compilation, first
    resets). ``sample_share`` and ``env_share``: the shares of an iteration spent sampling and,
    of the sampling, inside the env's ``step`` (from RLlib's own timers, which are smoothed).
    ``vectorize="sync"``: RLlib's default instead of the native vector env, a Python loop over
    one-session envs (for comparison).
    """
    runners = max(1, num_env_runners)
    config = RLlibTrainConfig(env_id=env_id, env_options=env_options, seed=seed, num_env_runners=num_env_runners,
                              num_envs_per_env_runner=max(1, num_envs // runners), eval_every=0)
    start_ray(None)
    algo = config.algo_config().env_runners(gym_env_vectorize_mode=vectorize).build_algo()
    try:
        rates, result = [], {}
        for i in range(iterations + 1):
            result = algo.train()
            if i > 0:
                rates.append(result["env_runners"]["num_env_steps_sampled"] / result["time_this_iter_s"])
    finally:
        algo.stop()
    timers, runs = result["timers"], result["env_runners"]
    vector_steps = runs["num_env_steps_sampled"] / runners / config.num_envs_per_env_runner
    return {"train": float(np.median(rates)),
            "sample_share": timers["env_runner_sampling_timer"] / timers["training_iteration"],
            "env_share": min(1.0, runs["env_step_timer"] * vector_steps / timers["env_runner_sampling_timer"])}
