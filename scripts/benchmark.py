"""Throughput of ecomsim against its physical limit, measured in one run.

    python scripts/benchmark.py --json                 # everything, CPU (about 3 minutes with the 10M-step memory run)
    python scripts/benchmark.py --long-steps 1000000   # shorter memory run
    python scripts/benchmark.py --device cuda          # model forward (and later the core) on the GPU

Rows (all ``ecomsim/Recommend-v0``, random actions, resets included):

1. ``single``: one ``gym.make`` env, DNN shoppers and the reference world;
2. ``make_vec``: ``gym.make_vec`` at ``--sizes`` sessions;
3. ``observe``: the observation alone (``core.observe()``) at the large ``--sizes``:
   the part of a vector step that does not depend on the shopper model;
4. ``sb3_vec``: the native SB3 VecEnv (``agents.vec_env``) at 64, 1024 and ``--ppo-envs``
   (with the ``ppo`` rows this splits PPO's time per step between the env and SB3);
5. ``forward``: the behaviour model's forward alone at the same batch sizes (one
   row per session, as a core step calls it), both engines the env can use (the
   compiled per-session ``kernel`` and ``torch``); the faster one is the physical
   limit of a DNN env, and the ``make_vec`` DNN rows show their ratio to it;
6. ``ppo``: SB3 PPO ``learn`` steps/s with the native VecEnv and with ``DummyVecEnv``
   of single envs, same number of envs, the project's PPO defaults;
7. ``memory``: peak RSS over a ``--long-steps`` vector-env run, sampled along the way.

Threads are set deliberately (``--threads``) for torch and the BLAS; the output
states them. The default is 1: the targets assume 2 cores, but when other work
shares them (the usual case) a second BLAS or torch thread spins waiting for a busy
core, and a (300, 8) @ (8, 256) matmul measured 0.05 ms with 1 thread and 12.5 ms
with 2. Pass ``--threads 2`` on an idle machine. The compiled step kernels
(``ecomsim.sim.kernels``) run on one thread; the first run on a machine compiles them
(numba, cached afterwards), and the warm-up of each measurement keeps compilation
out of the figures. Until the DNN weights ship,
DNN rows say "unavailable" and why; ``--random-dnn`` measures the DNN path with
randomly initialised weights of the same architecture instead (speed does not depend
on the weights' values, only the episode lengths do).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

ENV_ID = "ecomsim/Recommend-v0"
TARGET_SINGLE = 25_000  # steps/s, single env, DNN shoppers
TARGET_VEC_RATIO = 0.60  # vector env at 4096 / forward-only rows/s
TARGET_PPO_RATIO = 3.0  # native VecEnv / DummyVecEnv PPO steps/s


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true", help="also print the results as one JSON object")
    p.add_argument("--device", default="cpu", help="cpu or cuda (cuda rows are skipped with a message when unavailable)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch and BLAS threads (default 1: on a shared machine 2 BLAS threads make small matmuls ~100x slower)")
    p.add_argument("--seconds", type=float, default=3.0, help="seconds per throughput measurement")
    p.add_argument("--sizes", default="1,64,1024,4096,16384", help="make_vec num_envs values")
    p.add_argument("--long-steps", type=int, default=10_000_000, help="env steps of the memory run (0 skips it)")
    p.add_argument("--long-envs", type=int, default=4096, help="num_envs of the memory run")
    p.add_argument("--ppo-envs", type=int, default=32, help="num_envs of the PPO comparison (project default 32)")
    p.add_argument("--ppo-steps", type=int, default=16_384, help="timesteps per PPO measurement")
    p.add_argument("--random-dnn", action="store_true",
                   help="when the shipped weights are missing, time the DNN path with random weights")
    p.add_argument("--skip", default="", help="comma list of sections to skip: single,make_vec,observe,sb3_vec,forward,ppo,memory")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    if args.device not in ("cpu", "cuda"):
        p.error(f"--device must be cpu or cuda, got {args.device!r}")
    return args


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
        from ecomsim.envs import build_core
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


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MiB (Linux /proc; else resource)."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
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


# ================================================================== main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before numpy / torch start their pools
    import numpy as np
    import torch

    import ecomsim  # noqa: F401  (registers the ids)

    torch.set_num_threads(args.threads)
    skip = {s for s in args.skip.split(",") if s}
    sizes = [int(s) for s in args.sizes.split(",") if s]
    sh = Shoppers(args.random_dnn)
    cuda = torch.cuda.is_available()
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
        "env_id": ENV_ID,
        "catalog": __import__("ecomsim.config", fromlist=["EnvConfig"]).EnvConfig().catalog,
        "machine": {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
                    "numba": __import__("numba").__version__,
                    "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "blas_threads": args.threads,
                    "cuda": torch.cuda.get_device_name(0) if cuda else None,
                    "load_avg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
        "dnn": sh.dnn_note if sh.dnn is not None else f"unavailable: {sh.dnn_reason}",
        "rows": [],
        "messages": [],
    }
    rows: list[dict[str, Any]] = result["rows"]
    say = lambda msg: (result["messages"].append(msg), print(msg, file=sys.stderr, flush=True))  # noqa: E731

    def add(section: str, shopper: str, num_envs: int, value: float | None, unit: str = "steps/s", note: str = "") -> None:
        row = {"section": section, "shopper": shopper, "num_envs": num_envs, "device": args.device,
               "value": None if value is None else round(value), "unit": unit, "note": note}
        rows.append(row)
        shown = "unavailable" if value is None else f"{value:,.0f} {unit}"
        print(f"  {section:<9} {shopper:<9} n={num_envs:<6} {shown}  {note}", file=sys.stderr, flush=True)

    device_ok = args.device == "cpu" or cuda
    if not device_ok:
        say(f"--device {args.device}: no CUDA device here (torch.cuda.is_available() is False); every row is skipped")
        return finish(result, args)
    if args.device == "cuda":
        say("the simulation core runs on CPU (EnvConfig.device accepts only 'cpu' so far); env rows on cuda are skipped, "
            "the forward rows run on cuda")

    shoppers = ["dnn", "reference"]
    env_rows = args.device == "cpu"
    if env_rows and "single" not in skip:
        for s in shoppers:
            kw = sh.kwargs(s)
            add("single", s, 1, None if kw is None else bench_single(kw, args.seconds),
                note="" if kw is not None else sh.dnn_reason)
    forward: dict[int, dict[str, float]] = {}
    if "forward" not in skip:
        if sh.dnn is None:
            for n in sizes:
                add("forward", "dnn", n, None, "rows/s", sh.dnn_reason)
        else:
            for n in sizes:
                forward[n] = f = bench_forward(sh.model(args.device), n, args.device, args.seconds)
                add("forward", "dnn", n, f["limit"], "rows/s",
                    " ".join(f"{k}={v:,.0f}" for k, v in f.items() if k != "limit"))
    if env_rows and "make_vec" not in skip:
        for s in shoppers:
            for n in sizes:
                kw = sh.kwargs(s)
                if kw is None:
                    add("make_vec", s, n, None, note=sh.dnn_reason)
                    continue
                if n * 491 * 4 * 40 / 2**20 > mem_available_mb():  # ~40 float32 obs-sized temporaries
                    add("make_vec", s, n, None, note="skipped: not enough free memory")
                    continue
                v = bench_make_vec(kw, n, args.seconds)
                note = f"{v / forward[n]['limit']:.0%} of forward" if s == "dnn" and n in forward else ""
                add("make_vec", s, n, v, note=note)
    if env_rows and "observe" not in skip:
        kw = sh.kwargs("reference")  # the observation does not depend on the shopper model
        for n in [n for n in sizes if n >= 1024]:
            add("observe", "any", n, bench_observe(kw, n, args.seconds), "rows/s",
                "core.observe() alone: part of every make_vec step")
    if env_rows and "sb3_vec" not in skip:
        for s in shoppers:
            for n in sorted({args.ppo_envs, 64, 1024}):  # ppo_envs: the env's share of the PPO rows
                kw = sh.kwargs(s)
                add("sb3_vec", s, n, None if kw is None else bench_sb3_vec(kw, n, args.seconds),
                    note="" if kw is not None else sh.dnn_reason)
    if env_rows and "ppo" not in skip:
        import gymnasium as gym
        from stable_baselines3.common.vec_env import DummyVecEnv

        from agents.vec_env import EcomSB3VecEnv

        for s in shoppers:
            if sh.kwargs(s) is None:
                add("ppo", s, args.ppo_envs, None, note=sh.dnn_reason)
                continue
            n = args.ppo_envs
            native = bench_ppo(EcomSB3VecEnv(n, env_id=ENV_ID, **sh.kwargs(s)), args.ppo_steps)
            add("ppo", s, n, native, note="native EcomSB3VecEnv")
            dummy = bench_ppo(DummyVecEnv([lambda: gym.make(ENV_ID, **sh.kwargs(s)) for _ in range(n)]), args.ppo_steps)
            add("ppo", s, n, dummy, note=f"DummyVecEnv of gym.make; native is {native / dummy:.1f}x")
    if env_rows and "memory" not in skip and args.long_steps > 0:
        s = "dnn" if sh.dnn is not None else "reference"
        mem = bench_memory(sh.kwargs(s), args.long_envs, args.long_steps)
        mem["shopper"] = s
        result["memory"] = mem
        add("memory", s, args.long_envs, mem["steps_per_s"],
            note=f"{mem['env_steps']:,} steps: RSS {mem['rss_after_warmup_mb']} -> {mem['rss_end_mb']} MiB "
                 f"(growth {mem['growth_after_warmup_mb']} MiB), peak {mem['peak_rss_process_mb']} MiB")
    return finish(result, args)


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets checked against this run's rows (None where a row is missing)."""
    def val(section: str, shopper: str, n: int, note_has: str = "") -> float | None:
        for r in result["rows"]:
            if (r["section"], r["shopper"], r["num_envs"]) == (section, shopper, n) and note_has in r["note"]:
                return r["value"]
        return None

    single = val("single", "dnn", 1)
    vec, fwd = val("make_vec", "dnn", 4096), val("forward", "dnn", 4096)
    ppo_rows = [r for r in result["rows"] if r["section"] == "ppo" and r["shopper"] == "dnn"]
    native = next((r["value"] for r in ppo_rows if "native" in r["note"][:6]), None)
    dummy = next((r["value"] for r in ppo_rows if r["note"].startswith("Dummy")), None)
    mem = result.get("memory")
    out = [
        {"target": f"single env (DNN) >= {TARGET_SINGLE:,} steps/s", "value": single,
         "met": None if single is None else single >= TARGET_SINGLE},
        {"target": f"vector env at 4096 (DNN) >= {TARGET_VEC_RATIO:.0%} of forward rows/s",
         "value": None if not (vec and fwd) else round(vec / fwd, 3),
         "met": None if not (vec and fwd) else vec / fwd >= TARGET_VEC_RATIO},
        {"target": f"PPO native VecEnv >= {TARGET_PPO_RATIO:g}x DummyVecEnv (DNN)",
         "value": None if not (native and dummy) else round(native / dummy, 2),
         "met": None if not (native and dummy) else native / dummy >= TARGET_PPO_RATIO},
    ]
    if mem:
        flat = mem["growth_after_warmup_mb"] <= max(16.0, 0.02 * mem["rss_after_warmup_mb"])
        out.append({"target": "memory flat over the long run (growth after warm-up <= max(16 MiB, 2%))",
                    "value": mem["growth_after_warmup_mb"], "met": flat})
    return out


def finish(result: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    result["targets"] = targets(result)
    m = result["machine"]
    print(f"\necomsim benchmark  {result['env_id']}  device={args.device}  torch threads={m['torch_threads']}  "
          f"BLAS threads={m['blas_threads']}  cpus={m['cpus']}  load at start={m['load_avg_at_start']}")
    print(f"DNN shoppers: {result['dnn']}; catalog: {result['catalog']}")
    print(f"{'section':<10}{'shopper':<11}{'num_envs':>9}  {'throughput':>16}  note")
    for r in result["rows"]:
        v = "unavailable" if r["value"] is None else f"{r['value']:,} {r['unit']}"
        print(f"{r['section']:<10}{r['shopper']:<11}{r['num_envs']:>9}  {v:>16}  {r['note']}")
    for msg in result["messages"]:
        print(f"note: {msg}")
    print("targets:")
    for t in result["targets"]:
        met = {True: "MET", False: "MISSED", None: "n/a"}[t["met"]]
        print(f"  [{met:>6}] {t['target']}: {t['value']}")
    if args.json:
        print(json.dumps(result, indent=None, default=float))
    return result


if __name__ == "__main__":
    main()
