"""One evaluation harness: run a policy for N seeded sessions and score it by conversion.

Sessions are spread over ``num_envs`` sub-envs with a fixed quota each, and only the
first ``quota`` sessions of every sub-env count: stopping at "the first N sessions to
finish" would over-sample short sessions and bias every metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ecomsim.envs import EcomVectorEnv
from ecomsim.metrics import Estimate, SessionRecorder


@dataclass
class EvalResult:
    policy: str
    num_sessions: int
    metrics: dict[str, Estimate]
    funnel: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "num_sessions": self.num_sessions,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "funnel": self.funnel,
        }


def evaluate(
    policy,
    env: EcomVectorEnv,
    num_sessions: int,
    seed: int = 0,
    act: Callable[[np.ndarray], np.ndarray] | None = None,
    max_steps: int | None = None,
) -> EvalResult:
    """Score ``policy`` (a ``agents.baselines.Policy``) on ``num_sessions`` sessions of ``env``.

    Args:
        policy: a baseline policy, or anything with a ``name`` when ``act`` is given.
        env: the vector env (its sub-envs share the work).
        num_sessions: sessions to score; must be a positive multiple-friendly number
            (each sub-env runs ``ceil(num_sessions / num_envs)`` and the surplus is dropped
            from the last sub-envs' quotas).
        seed: seeds the env (sub-env ``i`` gets ``seed + i``) and the policy's generator.
        act: optional function obs -> actions (e.g. an SB3 model's predict), used instead of ``policy.act``.
    """
    if not isinstance(num_sessions, int) or num_sessions < 1:
        raise ValueError(f"num_sessions must be a positive integer, got {num_sessions!r}")
    n = env.num_envs
    quota = np.full(n, num_sessions // n, dtype=np.int64)
    quota[: num_sessions % n] += 1
    done_count = np.zeros(n, dtype=np.int64)
    recorder = SessionRecorder()
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    if act is None:
        policy.reset(env.core, rng)
        act = policy.act
    steps = 0
    limit = max_steps or 10 * (num_sessions // n + 1) * env.config.max_steps
    while (done_count < quota).any():
        actions = act(obs)
        obs, reward, terminated, truncated, info = env.step(actions)
        if hasattr(policy, "observe") and act is getattr(policy, "act", None):
            policy.observe(actions, reward, info)
        done = terminated | truncated
        recorder.record(info, done & (done_count < quota))
        done_count += done
        steps += 1
        if steps > limit:
            raise RuntimeError(f"evaluation did not finish {num_sessions} sessions in {limit} steps")
    name = getattr(policy, "name", str(policy))
    return EvalResult(name, recorder.num_sessions, recorder.metrics(), recorder.funnel())
