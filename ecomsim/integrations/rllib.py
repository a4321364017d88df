"""Ray RLlib: the ecomsim ids in every Ray worker, each env runner stepping the native batched env.

    pip install -e ".[rllib]"       # ray[rllib]; it pins gymnasium==1.2.2, which ecomsim supports

    from ecomsim.integrations.rllib import ppo_config
    algo = ppo_config("ecomsim/Recommend-v0", num_env_runners=2, num_envs_per_env_runner=32).build_algo()
    algo.train()

Two things go wrong with a plain ``config.environment("ecomsim/Recommend-v0")``:

* **remote workers cannot find the id**: Gymnasium >= 1.0 loads no plugins, and an RLlib
  env runner is a fresh process that never imports ecomsim (``Namespace ecomsim not
  found``). :func:`register_rllib_envs` registers every id with Ray's own registry
  (``ray.tune.registry.register_env``) under the same name; the creator it registers is a
  function of this module, which Ray pickles by reference, so a worker that unpickles it
  imports ecomsim first (registering the ids with Gymnasium as well);
* **one session per env**: RLlib's default ``gym_env_vectorize_mode="sync"`` loops in Python
  over ``num_envs_per_env_runner`` single envs. :func:`ppo_config` sets
  ``"vector_entry_point"``, so RLlib calls the creator with ``num_envs`` and gets the native
  :class:`~ecomsim.envs.EcomVectorEnv`: one core call steps all of a runner's sessions (its
  NEXT_STEP autoreset is what RLlib's env runners expect). ``num_workers`` in ``env_config``
  splits them further across processes (``ecomsim.shards``).

:class:`EcomMetricsCallback` logs each finished session's totals from its last info, so
every iteration's result holds the project's conversion metrics under ``env_runners ->
ecomsim`` (sums: ``sessions``, ``impressions``, ``clicks``, ``buyers``, ``revenue``,
``steps``; :func:`session_metrics_of` turns them into ``ecomsim.metrics.METRIC_NAMES``).

On a Ray cluster the same code runs unchanged: start the head with ``ray start --head``,
each other machine with ``ray start --address=HEAD:6379``, and connect the driver with
``ray.init(address="auto")`` (``scripts/train_rllib.py --address auto``); every machine needs
ecomsim installed, nothing else.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.tune.registry import register_env

from ecomsim.registration import ENV_IDS, env_kwargs

#: the per-session totals :class:`EcomMetricsCallback` sums, by the info key they come from (None: derived)
SESSION_SUMS = {"sessions": None, "buyers": None, "impressions": "session_impressions", "clicks": "session_clicks",
                "revenue": "session_revenue", "steps": "session_length"}
METRICS_KEY = "ecomsim"  # where the sums sit in a result: result["env_runners"][METRICS_KEY]


def make_env(env_id: str, env_context: dict[str, Any]) -> gym.Env:
    """RLlib's env creator for ``env_id``: ``env_context`` is the ``env_config`` (``EnvConfig`` options and
    ``num_workers``), plus ``num_envs`` when RLlib asks for a vector env (``vector_entry_point`` mode)."""
    import ecomsim  # noqa: F401  (registers the ids with Gymnasium in this worker)

    options = dict(env_context)
    num_envs = options.pop("num_envs", None)
    if num_envs is None:  # RLlib's "sync" / "async" modes: one session per env
        return gym.make(env_id, **options)
    return gym.make_vec(env_id, num_envs=num_envs, **options)


def register_rllib_envs() -> list[str]:
    """Register every ecomsim id with Ray's registry (idempotent); the ids, which ``config.environment`` then takes."""
    for env_id in ENV_IDS:
        register_env(env_id, functools.partial(make_env, env_id))
    return list(ENV_IDS)


class EcomMetricsCallback(RLlibCallback):
    """Sums each finished session's totals (its last info) into the env runner's metrics (see the module docstring)."""

    def on_episode_end(self, *, episode, metrics_logger=None, **kwargs) -> None:
        if metrics_logger is None:
            return
        info = episode.get_infos(-1)
        values = {"sessions": 1.0, "buyers": float(info["session_purchases"] > 0)}
        values.update((name, float(info[key])) for name, key in SESSION_SUMS.items() if key is not None)
        for name, value in values.items():
            metrics_logger.log_value((METRICS_KEY, name), value, reduce="sum")


def session_metrics_of(result: dict[str, Any]) -> dict[str, float] | None:
    """``ctr``, ``conversion_rate``, ``revenue_per_session``, ``session_length`` of the sessions an iteration
    finished (point values; ``None`` when none finished)."""
    sums = result.get("env_runners", {}).get(METRICS_KEY)
    if not sums or not sums.get("sessions"):
        return None
    n = sums["sessions"]
    return {"ctr": sums["clicks"] / max(sums["impressions"], 1.0), "conversion_rate": sums["buyers"] / n,
            "revenue_per_session": sums["revenue"] / n, "session_length": sums["steps"] / n}


def ppo_config(env_id: str = "ecomsim/Recommend-v0", env_options: dict[str, Any] | None = None, *,
               num_env_runners: int = 0, num_envs_per_env_runner: int = 32, num_workers: int = 1, seed: int = 0,
               hidden: int = 64, train_batch_size: int = 2048, minibatch_size: int = 512, num_epochs: int = 4,
               lr: float = 3e-4, timesteps: int | None = None, gamma: float = 0.95) -> PPOConfig:
    """A PPO config on ``env_id`` whose env runners step the native vector env (the module docstring says why).

    Args:
        env_id: a registered ecomsim id; ``env_options``: ``EnvConfig`` overrides (checked here).
        num_env_runners: remote env runner processes (0: sampling in the driver).
        num_envs_per_env_runner: sessions each runner steps together (one native vector env).
        num_workers: processes each runner's vector env splits its sessions across (``ecomsim.shards``).
        seed: seeds the env runners' envs and RLlib's own draws.
        hidden: width of the two hidden layers of the policy and value networks.
        train_batch_size, minibatch_size, num_epochs, lr, gamma: PPO's, the project's SB3 defaults
            (``agents/defaults.py``: 32 envs x 64 steps, minibatches of 512, 4 epochs, 3e-4, 0.95).
        timesteps: when given, the learning rate falls linearly to 0 over them (as the SB3 default).
    """
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    options = env_kwargs(env_id, **(env_options or {}))
    from ecomsim.config import EnvConfig

    EnvConfig.from_kwargs(options)  # every option, before any Ray process starts
    for name, value, low in (("num_env_runners", num_env_runners, 0), ("num_envs_per_env_runner",
                             num_envs_per_env_runner, 1), ("num_workers", num_workers, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    register_rllib_envs()
    schedule = lr if timesteps is None else [[0, lr], [int(timesteps), 0.0]]
    env_config = dict(options, **({"num_workers": num_workers} if num_workers > 1 else {}))
    return (
        PPOConfig()
        .environment(env=env_id, env_config=env_config)
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=num_envs_per_env_runner,
                     gym_env_vectorize_mode="vector_entry_point")
        .training(train_batch_size_per_learner=train_batch_size, minibatch_size=minibatch_size,
                  num_epochs=num_epochs, lr=schedule, gamma=gamma, lambda_=0.95, clip_param=0.2,
                  entropy_coeff=0.01, vf_loss_coeff=0.5, grad_clip=0.5, grad_clip_by="global_norm")
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[hidden, hidden], fcnet_activation="tanh"))
        .callbacks(EcomMetricsCallback)
        .debugging(seed=seed)
    )
