"""Memory a training or evaluation run will need, estimated before anything large is allocated.

A count that cannot fit (``num_envs``, PPO's ``n_steps * num_envs`` rollout, DQN's
``buffer_size``) is refused with one line naming the option, the estimate and the
memory available, instead of allocating until numpy or torch fails.

The env's part is the simulator's own estimate (``ecomsim.sim.memory``: computed from the
declared state, per session; its module docstring says what it counts and how it compares
with measured memory), here for the env the run builds: Stable-Baselines3's ``VecEnv``
(``agents.vec_env``, :data:`agents.vec_env.SB3_VIEW`: its per-session info dicts) or
Gymnasium's native vector env.

Training adds SB3's buffers, from their layout (float32 unless said): PPO's rollout
``n_steps * num_envs`` rows of the observation, the action, reward, value, log-prob,
advantage, return and episode-start, plus one more observation block while SB3
flattens it for minibatches, and the policy's activations over ``num_envs``
observations (``num_candidates * (context + item + 2 hidden)`` floats each); DQN's
replay buffer ``buffer_size`` rows of observation and next observation, an int64
action and three floats.

:func:`check_fits` is what the scripts call. ``python3 -m agents.memory`` prints the
per-session estimate next to the peak-RSS growth of a 40,000-session SB3 ``VecEnv`` stepped
until its sessions end together (13.8 KB estimated; 10.2 and 11.7 KB measured with
reference-world and DNN shoppers on the 2-core machine).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any, Callable

from ecomsim.sim.memory import Estimate, available_bytes, show_bytes

QUICK_BYTES_PER_SESSION = 256 * 1024  # a generous bound: below a quarter of the memory with it, nothing is estimated

_PER_SESSION: dict[tuple, int] = {}


def env_bytes_per_session(env_options: dict[str, Any], sb3: bool = True) -> int:
    """Bytes per session of a vector env with ``env_options`` (``EnvConfig`` kwargs): ``ecomsim.sim.memory``'s
    estimate for the SB3 ``VecEnv`` (``sb3``) or Gymnasium's native vector env (a core of one session is built
    to learn the catalog's sizes and the shopper model)."""
    key = (tuple(sorted((k, repr(v)) for k, v in env_options.items())), sb3)
    if key not in _PER_SESSION:
        from agents.vec_env import SB3_VIEW
        from ecomsim.config import EnvConfig
        from ecomsim.assembly import VECTOR_VIEW, build_core
        from ecomsim.sim.memory import CatalogDims, session_bytes

        config = EnvConfig.from_kwargs(env_options)
        core = build_core(config, 1)
        dims = CatalogDims(core.catalog.num_items, core.catalog.num_categories, core.catalog.embed_dim)
        _PER_SESSION[key] = session_bytes(config, dims, core.shopper, SB3_VIEW if sb3 else VECTOR_VIEW)
    return _PER_SESSION[key]


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
    if algo in ("ppo", "maskable_ppo"):  # an on-policy rollout (MaskablePPO's also holds the masks, small)
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
            the estimate is not computed (it builds a core of one session).
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


_PROBE = """
import resource, sys
import numpy as np
from agents.memory import env_bytes_per_session
from agents.vec_env import EcomSB3VecEnv
n, options = int(sys.argv[1]), {"user_model": sys.argv[2], "max_steps": 5}
def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
est = env_bytes_per_session(options)  # loads the weights and compiles the kernels outside the figure
EcomSB3VecEnv(8, **options).reset()
base = peak()
env = EcomSB3VecEnv(n, **options)
env.reset()
for _ in range(6):  # the sessions still running at step 5 all end together (terminal observations)
    env.step(np.zeros(n, dtype=np.int64))
grown = (peak() - base) / n
print(f"{sys.argv[2]:>9}: estimate {est / 1024:.1f} KB per session, peak RSS grew {grown / 1024:.1f} KB per session "
      f"over {n:,} sessions and 6 steps")
"""


def _calibrate(num_envs: int = 40_000) -> None:
    """Print the estimate next to the peak-RSS growth of a ``num_envs``-session SB3 VecEnv stepped past the end of
    its sessions, per shopper model, each in a fresh process."""
    for model in ("reference", "dnn"):
        subprocess.run([sys.executable, "-c", _PROBE, str(num_envs), model], check=True)


if __name__ == "__main__":
    _calibrate()
