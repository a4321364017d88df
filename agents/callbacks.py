"""SB3 callbacks: ecomsim metrics to TensorBoard, periodic evaluation, checkpoints.

* :class:`EcomMetricsCallback` turns the ``session_*`` totals in ``infos`` at every
  session end into ``ecom/ctr``, ``ecom/conversion_rate``,
  ``ecom/revenue_per_session`` and ``ecom/session_length`` (tags from
  ``ecomsim.metrics.TAGS``), logged at each rollout / log interval.
* :class:`PeriodicEvalCallback` scores the current policy every ``eval_freq``
  steps on fixed seeded sessions (``eval/<metric>``, ``ecomsim.metrics.EVAL_TAGS``) and keeps the history for the
  learning curve.
* :class:`CheckpointCallback` calls a save function (``agents.train`` writes
  ``checkpoint.pt`` and ``state.json``, see ``agents.model_files``) every ``save_freq`` steps.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from ecomsim.metrics import EVAL_TAGS, TAGS, session_metrics


class EcomMetricsCallback(BaseCallback):
    """Logs the four conversion metrics over the sessions finished since the last log."""

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self._reset_buffer()
        self.history: list[dict[str, float]] = []

    def _reset_buffer(self) -> None:
        self._rows: dict[str, list[float]] = {k: [] for k in ("impressions", "clicks", "purchases", "revenue", "length")}

    def _on_step(self) -> bool:
        for info, done in zip(self.locals["infos"], self.locals["dones"]):
            if done:
                for key, rows in self._rows.items():
                    rows.append(float(info[f"session_{key}"]))
        return True

    def _flush(self) -> None:
        if len(self._rows["length"]) < 2:
            return
        a = {k: np.asarray(v) for k, v in self._rows.items()}
        metrics = session_metrics(a["impressions"], a["clicks"], a["purchases"], a["revenue"], a["length"])
        point = {"timesteps": float(self.num_timesteps)}
        for name, est in metrics.items():
            self.logger.record(TAGS[name], est.value)
            point[name] = est.value
        self.history.append(point)
        self._reset_buffer()

    def _on_rollout_end(self) -> None:
        # PPO logs once per rollout; DQN's rollouts are short, so flush only every ~5k steps there
        if len(self._rows["length"]) >= 200 or self.model.__class__.__name__ == "PPO":
            self._flush()


class _EveryNSteps(BaseCallback):
    """Calls :meth:`_fire` each time ``num_timesteps`` passes a multiple of ``self.every``.

    The first multiple is the one after ``num_timesteps`` at the start of training, so a
    resumed run keeps the same schedule.
    """

    every: int

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.every + 1) * self.every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next += self.every
            self._fire()
        return True

    def _fire(self) -> None:
        raise NotImplementedError


class PeriodicEvalCallback(_EveryNSteps):
    """Every ``eval_freq`` env steps, score the policy on ``num_sessions`` seeded sessions.

    Args:
        make_env: builds the evaluation vector env (an ``EcomVectorEnv``); called once.
        eval_freq: env steps (all sub-envs together) between evaluations.
        num_sessions: sessions per evaluation (same seed every time: comparable points).
        seed: evaluation seed.
        history: earlier points (a resumed run continues its curve).
        should_stop: when it returns true at the end of training (a stop was asked for), the
            final evaluation is skipped so the run ends at once.
    """

    def __init__(self, make_env, eval_freq: int, num_sessions: int = 1000, seed: int = 10_000,
                 history: list[dict[str, Any]] | None = None, should_stop: Callable[[], bool] | None = None,
                 verbose: int = 0) -> None:
        super().__init__(verbose)
        if eval_freq < 1 or num_sessions < 1:
            raise ValueError(f"eval_freq and num_sessions must be >= 1, got {eval_freq} and {num_sessions}")
        self.make_env, self.eval_freq, self.num_sessions, self.seed = make_env, eval_freq, num_sessions, seed
        self.should_stop = should_stop
        self.every = eval_freq
        self.history: list[dict[str, Any]] = list(history or [])
        self._env = None

    def _fire(self) -> None:
        self.run_eval()

    def _on_training_end(self) -> None:
        if self.should_stop is not None and self.should_stop():
            return
        if not self.history or self.history[-1]["timesteps"] < self.num_timesteps:
            self.run_eval()
            self.logger.dump(self.num_timesteps)

    def run_eval(self) -> dict[str, Any]:
        from agents.evaluation import SB3Policy, evaluate

        if self._env is None:
            self._env = self.make_env()
        result = evaluate(SB3Policy(self.model, "current"), self._env, self.num_sessions, seed=self.seed)
        point: dict[str, Any] = {"timesteps": int(self.num_timesteps)}
        for name, est in result.metrics.items():
            self.logger.record(EVAL_TAGS[name], est.value)
            point[name] = est.to_dict()
        self.history.append(point)
        if self.verbose:
            print(f"eval at {self.num_timesteps} steps: conversion {result.metrics['conversion_rate']}")
        return point


class CheckpointCallback(_EveryNSteps):
    """Call ``save()`` every ``save_freq`` env steps (``agents.train`` saves ``checkpoint.pt`` and ``state.json``)."""

    def __init__(self, save_freq: int, save: Callable[[], Any], verbose: int = 0) -> None:
        super().__init__(verbose)
        if save_freq < 1:
            raise ValueError(f"save_freq must be >= 1 env step, got {save_freq}")
        self.save_freq, self.save = save_freq, save
        self.every = save_freq

    def _fire(self) -> None:
        self.save()
