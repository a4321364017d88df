"""Memory a training or evaluation run will need, estimated before anything large is allocated.

A count that cannot fit (``num_envs``, PPO's ``n_steps * num_envs`` rollout, DQN's
``buffer_size``) is refused with one line naming the option, the estimate and the
memory available, instead of allocating until numpy or torch fails.

The estimate of a vector env is per session (sub-env):

* **the env's own arrays**, measured: an env of 64 and one of 192 sessions are built
  and stepped under ``tracemalloc`` (numpy reports its buffers to it), and the
  difference of what they hold, divided by 128, is the core's per-session arrays
  plus the step's Python ``info`` objects; measured, so it follows the core as it
  changes;
* **the step's transients**: the new observation (``obs_dim`` float32) and, with DNN
  shoppers above 128 rows, torch's activations, which ``tracemalloc`` does not see:
  1.5 observations more (calibrated on the 2-core machine with
  ``python3 -m agents.memory``: RSS grew 3.1 KB per session of a 40,000-session
  reference-world ``EcomSB3VecEnv`` over five steps and 5.6 KB with DNN shoppers; the
  estimate says 4.2 KB and 7.7 KB, about 35% above: on the safe side).

Training adds SB3's buffers, from their layout (float32 unless said): PPO's rollout
``n_steps * num_envs`` rows of the observation, the action, reward, value, log-prob,
advantage, return and episode-start, plus one more observation block while SB3
flattens it for minibatches, and the policy's activations over ``num_envs``
observations (``num_candidates * (context + item + 2 hidden)`` floats each); DQN's
replay buffer ``buffer_size`` rows of observation and next observation, an int64
action and three floats.

:func:`available_bytes` is ``MemAvailable`` of ``/proc/meminfo``, capped by a cgroup
(container) limit and by an address-space limit (``ulimit -v``) less what the process
already maps; where none can be read, nothing is refused.
:func:`check_fits` is what the scripts call; the pieces are public so the core's own
estimate (``EnvConfig``) can reuse them.
"""

from __future__ import annotations

import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

MIB = 1 << 20
GIB = 1 << 30
QUICK_BYTES_PER_SESSION = 256 * 1024  # a generous bound: below a quarter of the memory with it, nothing is measured
DNN_TRANSIENT_OBS = 1.5  # observation-sized torch activations per session of a DNN step (see the module docstring)


def available_bytes() -> int | None:
    """Memory this process can still take: ``MemAvailable``, capped by cgroup and ``ulimit -v`` limits; ``None`` when unknown."""
    avail = _rlimit_room()
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
                avail = free if avail is None else min(avail, free)
    except (OSError, ValueError):
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit, usage = Path(limit_file).read_text().strip(), int(Path(usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:
            room = max(0, int(limit) - usage)
            avail = room if avail is None else min(avail, room)
        break
    return avail


def _rlimit_room() -> int | None:
    """Address space left under ``RLIMIT_AS`` (``ulimit -v``), or ``None`` when unlimited or unknown."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            return None
        mapped = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
        return max(0, limit - mapped)
    except (ImportError, OSError, ValueError):
        return None


def show_bytes(n: float) -> str:
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / MIB:.0f} MiB"


@dataclass
class Estimate:
    """Bytes by part (``{"env (10,000 sessions x 7.9 KB)": 79e6, ...}``)."""

    parts: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return float(sum(self.parts.values()))

    def __str__(self) -> str:
        return f"{show_bytes(self.total)} (" + ", ".join(f"{k} {show_bytes(v)}" for k, v in self.parts.items()) + ")"


_MEASURED: dict[tuple, int] = {}


def env_bytes_per_session(env_options: dict[str, Any], sb3: bool = True) -> int:
    """Bytes per session of a stepped vector env with ``env_options`` (``EnvConfig`` kwargs); see the module docstring.

    Args:
        env_options: the env's options (``ecomsim.registration.env_kwargs``).
        sb3: the SB3 ``VecEnv`` (``agents.vec_env``, with its per-session info dicts) or
            Gymnasium's native vector env.
    """
    key = (tuple(sorted((k, repr(v)) for k, v in env_options.items())), sb3)
    if key not in _MEASURED:
        _MEASURED[key] = _measure(env_options, sb3)
    return _MEASURED[key]


def _build(n: int, env_options: dict[str, Any], sb3: bool):
    if sb3:
        from agents.vec_env import EcomSB3VecEnv

        env = EcomSB3VecEnv(n, **env_options)
        env.reset()
        step = lambda: env.step(np.zeros((n, *env.action_space.shape), dtype=np.int64))  # noqa: E731
    else:
        from ecomsim.envs import EcomVectorEnv

        env = EcomVectorEnv(num_envs=n, **env_options)
        env.reset(seed=0)
        step = lambda: env.step(np.zeros((n, *env.single_action_space.shape), dtype=np.int64))  # noqa: E731
    return env, step


def _measure(env_options: dict[str, Any], sb3: bool) -> int:
    env, step = _build(8, env_options, sb3)  # first use: catalog, weights and compiled kernels load outside the trace
    step()
    obs_dim = int(np.prod(env.observation_space.shape[1:] if not sb3 else env.observation_space.shape))
    dnn = env_options.get("user_model", "dnn") == "dnn"
    del env
    held = []
    for n in (64, 192):
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            env, step = _build(n, env_options, sb3)
            step()
            step()
            held.append(tracemalloc.get_traced_memory()[0] - before)
        finally:
            tracemalloc.stop()
        del env
    retained = max(0.0, (held[1] - held[0]) / 128)
    return int(retained + obs_dim * 4 * (1.0 + (DNN_TRANSIENT_OBS if dnn else 0.0)))


def training_estimate(algo: str, num_envs: int, algo_kwargs: dict[str, Any], env_options: dict[str, Any],
                      obs_dim: int, num_candidates: int, context_dim: int, hidden: int, eval_envs: int,
                      per_session: int | None = None) -> Estimate:
    """Bytes a training run needs: the training env, the evaluation env and SB3's buffers (module docstring)."""
    per = env_bytes_per_session(env_options) if per_session is None else per_session
    est = Estimate()
    est.parts[f"training env ({num_envs:,} sessions x {per / 1024:.1f} KB)"] = num_envs * per
    if eval_envs:
        est.parts[f"evaluation env ({eval_envs} sessions)"] = eval_envs * per
    obs = obs_dim * 4
    item_dim = (obs_dim - context_dim) // max(num_candidates, 1)
    act = 8  # an int64 action (a slate: one per slot, but small next to the observation)
    if algo == "ppo":
        rows = int(algo_kwargs["n_steps"]) * num_envs
        est.parts[f"PPO rollout ({algo_kwargs['n_steps']} steps x {num_envs:,} envs)"] = rows * (2 * obs + act + 7 * 4)
    else:
        rows = int(algo_kwargs["buffer_size"])
        est.parts[f"DQN replay buffer ({rows:,} transitions)"] = rows * (2 * obs + act + 3 * 4)
    est.parts["policy activations"] = num_envs * num_candidates * (context_dim + item_dim + 2 * hidden) * 4
    return est


def check_fits(estimate_at: Callable[[int], Estimate], option: str, value: int, quick_bytes: float) -> Estimate | None:
    """``ValueError`` naming ``option=value`` when ``estimate_at(value)`` exceeds the memory available.

    Args:
        estimate_at: the estimate as a function of the option's value (linear in it).
        option: the option's name in the message (``num_envs``, ``--num-envs``).
        value: its value.
        quick_bytes: a generous bound; when it fits in a quarter of the memory available
            the estimate is not computed (it builds small envs).
    """
    avail = available_bytes()
    if avail is None or quick_bytes <= avail / 4:
        return None
    est = estimate_at(value)
    if est.total <= avail:
        return est
    fixed = estimate_at(0).total
    per = (est.total - fixed) / max(value, 1)
    fits = int((avail - fixed) / per) if per > 0 and avail > fixed else 0
    hint = (f"lower {option} (about {fits:,} would fit)" if fits >= 1
            else f"even {option}=1 does not fit: the parts that do not depend on it need {show_bytes(fixed)}")
    raise ValueError(f"{option}={value:,} needs about {est}, but {show_bytes(avail)} of memory is available; {hint}")


def check_env_memory(option: str, num_envs: int, env_options: dict[str, Any], sb3: bool = False) -> Estimate | None:
    """:func:`check_fits` for a vector env of ``num_envs`` sessions (evaluation, reports)."""
    def estimate(n: int) -> Estimate:
        per = env_bytes_per_session(env_options, sb3)
        return Estimate({f"{n:,} sessions x {per / 1024:.1f} KB": n * per})

    return check_fits(estimate, option, num_envs, num_envs * QUICK_BYTES_PER_SESSION)


def _calibrate(num_envs: int = 40_000) -> None:
    """Print the estimate next to the RSS growth of a ``num_envs``-session SB3 VecEnv stepped five times, per shopper model."""
    from agents.vec_env import EcomSB3VecEnv

    def rss() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * 4096

    for options in ({"user_model": "reference"}, {"user_model": "dnn"}):
        est = env_bytes_per_session(options)
        before = rss()
        env = EcomSB3VecEnv(num_envs, **options)
        env.reset()
        for _ in range(5):
            env.step(np.zeros(num_envs, dtype=np.int64))
        grown = (rss() - before) / num_envs
        print(f"{options['user_model']:>9}: estimate {est / 1024:.1f} KB per session, RSS grew {grown / 1024:.1f} KB "
              f"per session over {num_envs:,} sessions and 5 steps")
        del env


if __name__ == "__main__":
    _calibrate()
