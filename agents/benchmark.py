"""Throughput measurements of the envs, the behaviour model's forward and SB3 training (``scripts/benchmark.py``).

Every function builds what it measures, warms it up (so first-use compilation of the
numba kernels stays out of the figure) and returns units per second, the best of a
few windows: on a shared machine the best window is the least disturbed one. Nothing
here sets threads; the script does, once (``agents.cli.pin_threads``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

ENV_ID = "ecomsim/Recommend-v0"
OBS_FLOATS = 491  # floats per observation of ENV_ID with the default options (memory estimate of a vector env)


# =========================================================== shopper models
class Shoppers:
    """How to build each shopper model for the env rows (a new model per env: models hold session state)."""

    def __init__(self, random_dnn: bool) -> None:
        self.dnn_reason = ""
        self.dnn_note = "shipped weights"
        self._dnn_net = None
        try:
            from ecomsim.shoppers.behavior import load_behavior_model

            load_behavior_model()
            self.dnn: dict[str, Any] | None = {"user_model": "dnn"}
        except Exception as exc:  # noqa: BLE001 - any failure makes the DNN rows unavailable, with the reason
            self.dnn = None
            self.dnn_reason = f"{type(exc).__name__}: {exc}"
            if random_dnn:
                self._prepare_random_dnn()

    def _prepare_random_dnn(self) -> None:
        import torch

        from ecomsim.shoppers.behavior import SessionTracker
        from ecomsim.shoppers.network import BehaviorNet
        from ecomsim.config import CHANNELS, EnvConfig
        from ecomsim.assembly import build_core
        from ecomsim.shoppers.reference import ReferenceWorld

        tracker = SessionTracker(build_core(EnvConfig(), 1, shopper=ReferenceWorld()).state)
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(0)
        self._dnn_net = BehaviorNet(len(tracker.user_names), len(tracker.item_names), len(CHANNELS), 64)
        torch.random.set_rng_state(gen_state)
        self._schema = {"user": tracker.user_names, "item": tracker.item_names}
        self.dnn = {"user_model": "reference", "shopper_factory": self._random_model}
        self.dnn_note = f"RANDOM weights (shipped weights unavailable: {self.dnn_reason})"
        self.dnn_reason = ""

    def _random_model(self, device: str = "cpu"):
        from ecomsim.shoppers.behavior import BehaviorModel

        return BehaviorModel(self._dnn_net, self._schema, device=device)

    def kwargs(self, name: str) -> dict[str, Any] | None:
        """Env keyword arguments for ``name`` (``dnn`` / ``reference``), a fresh model each call; None if unavailable."""
        if name == "reference":
            return {"user_model": "reference"}
        if self.dnn is None:
            return None
        kw = dict(self.dnn)
        factory = kw.pop("shopper_factory", None)
        if factory is not None:
            kw["shopper_obj"] = factory()
        return kw

    def model(self, device: str):
        """A behaviour model on ``device`` (for the forward-only rows)."""
        if self._dnn_net is not None:
            return self._random_model(device)
        from ecomsim.shoppers.behavior import load_behavior_model

        return load_behavior_model(device=device)


# ================================================================ timing
def rate(step: Callable[[], int], seconds: float, warmup: int = 3, windows: int = 3) -> float:
    """Units per second of ``step`` (which returns the units it did): the best of ``windows`` windows of
    ``seconds / windows`` wall time each (on a shared machine the best window is the least disturbed one)."""
    for _ in range(warmup):
        step()
    best = 0.0
    for _ in range(windows):
        done, t0 = 0, time.perf_counter()
        while True:
            done += step()
            dt = time.perf_counter() - t0
            if dt >= seconds / windows:
                break
        best = max(best, done / dt)
    return best


def bench_single(kwargs: dict[str, Any], seconds: float) -> float:
    import gymnasium as gym
    import numpy as np

    env = gym.make(ENV_ID, **kwargs)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, env.action_space.n, size=1000).tolist()

    def chunk() -> int:
        for a in actions:
            _, _, term, trunc, _ = env.step(a)
            if term or trunc:
                env.reset()
        return len(actions)

    return rate(chunk, seconds)


def bench_make_vec(kwargs: dict[str, Any], num_envs: int, seconds: float) -> float:
    import gymnasium as gym

    env = gym.make_vec(ENV_ID, num_envs=num_envs, **kwargs)
    env.reset(seed=0)
    return step_rate(env.step, num_envs, seconds)


def bench_observe(kwargs: dict[str, Any], num_envs: int, seconds: float) -> float:
    """Observations/s of ``core.observe()`` alone (the 491-float rows a vector step hands out)."""
    import gymnasium as gym

    env = gym.make_vec(ENV_ID, num_envs=num_envs, **kwargs)
    env.reset(seed=0)
    step_rate(env.step, num_envs, seconds / 6)  # sessions with history
    core = env.unwrapped.core
    return rate(lambda: (core.observe(), num_envs)[1], seconds)


def bench_sb3_vec(kwargs: dict[str, Any], num_envs: int, seconds: float) -> float:
    from agents.vec_env import EcomSB3VecEnv

    env = EcomSB3VecEnv(num_envs, env_id=ENV_ID, **kwargs)
    env.seed(0)
    env.reset()
    return step_rate(env.step, num_envs, seconds)


def step_rate(step, num_envs: int, seconds: float) -> float:
    """Env steps/s of a batched ``step(actions)``, cycling 8 fixed random action batches."""
    import numpy as np

    actions = [np.random.default_rng(i).integers(0, 20, size=num_envs) for i in range(8)]
    it = iter(range(1 << 62))

    def one() -> int:
        step(actions[next(it) % 8])
        return num_envs

    return rate(one, seconds)


def proc_cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) of process ``pid`` so far, from Linux's /proc; None elsewhere."""
    import os

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def bench_shards(kwargs: dict[str, Any], num_envs: int, seconds: float, rounds: int = 3) -> dict[str, Any]:
    """``make_vec`` at ``num_envs`` with ``num_workers`` 1 and 2, measured in alternating rounds.

    On a shared machine the two are disturbed alike only when they alternate; each figure is the
    best of ``rounds`` windows of ``seconds / (2 * rounds)``. Besides steps/s it returns CPU
    milliseconds per vector step: the one process (``num_workers=1``), and for 2 workers the
    parent (copies out of shared memory, messages, the env's own work) and each worker, plus
    ``message_ms``, the parent's CPU for one round trip to one idle worker (what each extra
    worker adds to a step). CPU figures come from /proc (None elsewhere).
    """
    import gymnasium as gym
    import numpy as np

    envs = {w: gym.make_vec(ENV_ID, num_envs=num_envs, num_workers=w, **kwargs) for w in (1, 2)}
    actions = [np.random.default_rng(i).integers(0, 20, size=num_envs) for i in range(8)]
    best = {1: 0.0, 2: 0.0}
    cpu: dict[int, list[list[float]]] = {1: [], 2: []}  # per round: [parent, worker...] ms per step
    try:
        for env in envs.values():
            env.reset(seed=0)
            for a in actions[:4]:  # warm-up: compilation, first allocations
                env.step(a)
        for _ in range(rounds):
            for w, env in envs.items():
                pids = env.unwrapped.core.pids if w > 1 else []
                c0, p0 = [proc_cpu_seconds(p) for p in pids], time.process_time()
                steps, t0 = 0, time.perf_counter()
                while (dt := time.perf_counter() - t0) < seconds / (2 * rounds) or steps == 0:
                    env.step(actions[steps % 8])
                    steps += 1
                best[w] = max(best[w], steps * num_envs / dt)
                used = [time.process_time() - p0] + [(c1 - c) if None not in (c, c1) else float("nan")
                                                     for c, c1 in zip(c0, [proc_cpu_seconds(p) for p in pids])]
                cpu[w].append([1000 * u / steps for u in used])
        core = envs[2].unwrapped.core
        t0 = time.process_time()
        for _ in range(200):
            core.observe([0])  # one row of worker 0: a round trip and almost no work
        message_ms = 1000 * (time.process_time() - t0) / 200
    finally:
        for env in envs.values():
            env.close()
    median = lambda rows: [float(np.median(col)) for col in zip(*rows)]  # noqa: E731
    return {"steps_per_s": best, "ratio": best[2] / best[1], "one_process_cpu_ms": median(cpu[1])[0],
            "parent_cpu_ms": median(cpu[2])[0], "worker_cpu_ms": median(cpu[2])[1:], "message_ms": message_ms}


def step_cpu_ms(kwargs: dict[str, Any], num_envs: int, seconds: float, windows: int = 3) -> float:
    """CPU milliseconds per step of one process stepping ``num_envs`` sessions (the least of ``windows``).

    CPU time rather than wall time: on a shared machine it is what the step costs, not how long
    other work kept it waiting."""
    import gymnasium as gym
    import numpy as np

    env = gym.make_vec(ENV_ID, num_envs=num_envs, **kwargs)
    env.reset(seed=0)
    actions = [np.random.default_rng(i).integers(0, 20, size=num_envs) for i in range(8)]
    for a in actions[:4]:
        env.step(a)
    best = float("inf")
    for _ in range(windows):
        steps, c0, t0 = 0, time.process_time(), time.perf_counter()
        while time.perf_counter() - t0 < seconds / windows or steps == 0:
            env.step(actions[steps % 8])
            steps += 1
        best = min(best, 1000 * (time.process_time() - c0) / steps)
    return best


def project_shards(kwargs: dict[str, Any], num_envs: int, measured: dict[str, Any], workers: tuple[int, ...],
                   seconds: float) -> dict[int, dict[str, float]]:
    """Steps/s a machine with a free core per worker should reach, from CPU times measured here.

    A sharded step is serial in the parent and parallel in the workers, so its time is
    ``T(W) = parent + (W - 2) * message + f * t(N / W)``: the parent's CPU per step with 2 workers
    (``measured``, from :func:`bench_shards`), one more round trip per extra worker, and the CPU
    time per step of one process holding ``N / W`` sessions (measured now: what a worker runs)
    times ``f``, the measured 2-worker shards' CPU over ``t(N / 2)`` (their writes into shared
    memory). Assumed: a core per worker, memory bandwidth to spare (a step writes and copies
    about 4 KiB per session), the agent's own forward not counted.
    """
    import numpy as np

    t = {w: step_cpu_ms(kwargs, max(1, num_envs // w), seconds) for w in sorted({2, *workers})}
    f = float(np.mean(measured["worker_cpu_ms"])) / t[2]
    if not np.isfinite(f):  # no /proc: no worker CPU figures
        f = 1.0
    out = {}
    for w in workers:
        total = measured["parent_cpu_ms"] + (w - 2) * measured["message_ms"] + f * t[w]
        out[w] = {"steps_per_s": 1000 * num_envs / total, "worker_ms": f * t[w], "overhead": f}
    return out


def bench_forward(model, num_envs: int, device: str, seconds: float) -> dict[str, float]:
    """Rows/s of the behaviour model's forward at batch ``num_envs`` (one item per session).

    ``kernel``: the model's compiled forward on feature arrays; ``torch``: the network on
    tensors already on ``device`` under ``inference_mode``; ``limit``: the faster one.
    Features come from a real core so their values are realistic.
    """
    import numpy as np
    import torch

    from ecomsim.envs import EcomVectorEnv

    env = EcomVectorEnv(num_envs=min(num_envs, 4096), user_model="reference", shopper_obj=model)
    env.reset(seed=0)
    tr = model.tracker
    reps = -(-num_envs // env.num_envs)
    user = np.tile(tr.user_features(), (reps, 1))[:num_envs]
    items = np.tile(tr.item_features(env.core.candidates[:, :1]), (reps, 1, 1))[:num_envs]
    channel = np.tile(env.core.portraits.channel, reps)[:num_envs]
    positions = np.zeros(1, dtype=np.float32)
    out: dict[str, float] = {}
    if model._folded is not None and device == "cpu":
        pos64 = positions.astype(np.float64)
        out["kernel"] = rate(lambda: (model._folded.run(user, items, pos64, channel), num_envs)[1], seconds / 2)
    dev = torch.device(device)
    t = [torch.as_tensor(a, device=dev) for a in (user, items, positions)] + [torch.as_tensor(channel, device=dev)]
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def torch_fwd() -> int:
        with torch.inference_mode():
            model.net(*t)
        sync()
        return num_envs

    out["torch"] = rate(torch_fwd, seconds / 2)
    out["limit"] = max(out.values())
    return out


def bench_ppo(vec_env, steps: int) -> float:
    import torch
    from stable_baselines3 import PPO

    from agents.defaults import PPO_DEFAULTS

    kw = dict(PPO_DEFAULTS["algo_kwargs"])
    kw.pop("lr_schedule", None)  # a training-script option (agents.train), not a PPO argument; speed is the same
    h = PPO_DEFAULTS["hidden"]
    model = PPO("MlpPolicy", vec_env, policy_kwargs={"net_arch": [h, h]}, seed=0, device="cpu", verbose=0, **kw)
    model.learn(kw["n_steps"] * vec_env.num_envs)  # warm-up rollout
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - t0)


def bench_inventory(kwargs: dict[str, Any], seconds: float) -> tuple[float, float]:
    """``(store-days/s, sessions/s)`` of ``ecomsim/Inventory-v0`` with its registered traffic, random orders, resets
    included; sessions/s is days/s times the mean sessions of the days stepped."""
    import gymnasium as gym

    env = gym.make("ecomsim/Inventory-v0", **kwargs)
    env.action_space.seed(0)
    env.reset(seed=0)
    seen = [0, 0]  # days, sessions

    def chunk() -> int:
        for _ in range(10):
            _, _, _, truncated, info = env.step(env.action_space.sample())
            seen[0], seen[1] = seen[0] + 1, seen[1] + int(info["sessions"])
            if truncated:
                env.reset()
        return 10

    days = rate(chunk, seconds)
    return days, days * seen[1] / seen[0]


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MiB (Linux /proc; else resource)."""
    try:
        status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return peak, peak


def bench_memory(kwargs: dict[str, Any], num_envs: int, total_steps: int) -> dict[str, Any]:
    """Run ``total_steps`` env steps at ``num_envs``; RSS sampled 20 times after a warm-up tenth."""
    import gymnasium as gym
    import numpy as np

    env = gym.make_vec(ENV_ID, num_envs=num_envs, **kwargs)
    env.reset(seed=0)
    actions = [np.random.default_rng(i).integers(0, 20, size=num_envs) for i in range(8)]
    calls = max(1, total_steps // num_envs)
    samples: list[tuple[int, float]] = []
    every = max(1, calls // 20)
    t0 = time.perf_counter()
    for i in range(calls):
        env.step(actions[i % 8])
        if i + 1 == max(1, calls // 10) or (i + 1) % every == 0:
            samples.append(((i + 1) * num_envs, rss_mb()[0]))
    dt = time.perf_counter() - t0
    after_warmup = [s for s in samples if s[0] >= calls // 10 * num_envs]
    first, last = after_warmup[0][1], after_warmup[-1][1]
    return {
        "env_steps": calls * num_envs,
        "num_envs": num_envs,
        "seconds": round(dt, 1),
        "steps_per_s": round(calls * num_envs / dt),
        "rss_after_warmup_mb": round(first, 1),
        "rss_end_mb": round(last, 1),
        "rss_max_sampled_mb": round(max(s[1] for s in after_warmup), 1),
        "peak_rss_process_mb": round(rss_mb()[1], 1),
        "growth_after_warmup_mb": round(last - first, 1),
        "samples": [(s, round(m, 1)) for s, m in samples],
    }


def mem_available_mb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("inf")
