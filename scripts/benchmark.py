"""Throughput of ecomsim against its physical limit, measured in one run.

    python scripts/benchmark.py --json                 # everything, CPU (about 3 minutes with the 10M-step memory run)
    python scripts/benchmark.py --long-steps 1000000   # shorter memory run
    python scripts/benchmark.py --device cuda          # model forward (and later the core) on the GPU

Rows (``ecomsim/Recommend-v0`` unless said, random actions, resets included):

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
7. ``memory``: peak RSS over a ``--long-steps`` vector-env run, sampled along the way;
8. ``rllib``: Ray RLlib PPO env steps/s (sampling and learning) with ``--rllib-runners`` env
   runners sharing ``--ppo-envs`` sessions, next to the ``ppo`` rows (the same batch: 64
   steps per session, minibatches of 512, 4 epochs, a [64, 64] MLP), and with RLlib's default
   loop over one-session envs instead of the native vector env; "unavailable" without
   Ray (an optional extra: ``pip install -e ".[rllib]"``);
9. ``shards``: ``make_vec`` at ``--shard-envs`` (DNN shoppers) with ``num_workers`` 1 and 2
   (``ecomsim.shards``), alternating rounds, their ratio and CPU per step; then the steps/s
   ``--project-workers`` workers should reach with a free core each (``agents.benchmark.project_shards``:
   the parent's serial part and a worker's step time at ``N / W`` sessions, both measured here);
10. ``retention``: ``ecomsim/Retention-v0`` decisions/s, visits/s and simulated customer-years/s, one
   ``gym.make`` env and ``gym.make_vec`` at ``--retention-envs`` customers (``agents.retention.bench_retention``);
11. ``inventory``: ``ecomsim/Inventory-v0`` store-days/s (and the sessions/s they are) with its registered
    traffic (200 sessions a day), random orders, both shopper models (``agents.benchmark.bench_inventory``).

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

The measurements themselves live in ``agents/benchmark.py``; this script picks the
sections, checks the targets and prints the table.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from agents.benchmark import (ENV_ID, OBS_FLOATS, Shoppers, bench_forward, bench_inventory, bench_make_vec, bench_memory,
                              bench_observe, bench_ppo, bench_sb3_vec, bench_shards, bench_single, mem_available_mb,
                              project_shards)
from agents.cli import option, parse_args, pin_threads, run
from agents.memory import check_env_memory

TARGET_SINGLE = 25_000  # steps/s, single env, DNN shoppers
TARGET_VEC_RATIO = 0.60  # vector env at 4096 / forward-only rows/s
TARGET_PPO_RATIO = 3.0  # native VecEnv / DummyVecEnv PPO steps/s
Section = Literal["single", "make_vec", "observe", "sb3_vec", "forward", "ppo", "memory", "rllib", "shards", "retention",
                  "inventory"]


@dataclass
class Args:
    json: bool = False
    """also print the results as one JSON object (the last line)"""
    device: Literal["cpu", "cuda"] = "cpu"
    """cpu or cuda (on cuda only the forward rows run; without a GPU every row is skipped with a message)"""
    threads: int = option(1, min=1)
    """torch and BLAS threads (1: on a shared machine 2 BLAS threads make small matmuls ~100x slower)"""
    seconds: float = option(3.0, min=0)
    """seconds per throughput measurement"""
    sizes: tuple[int, ...] = option((1, 64, 1024, 4096, 16384), min=1)
    """make_vec num_envs values"""
    long_steps: int = option(10_000_000, min=0)
    """env steps of the memory run (0 skips it)"""
    long_envs: int = option(4096, min=1)
    """num_envs of the memory run"""
    ppo_envs: int = option(32, min=1)
    """num_envs of the PPO comparison (the project default)"""
    ppo_steps: int = option(16_384, min=1)
    """timesteps per PPO measurement"""
    rllib_runners: tuple[int, ...] = option((0, 1, 2), min=0)
    """env runner counts of the RLlib rows"""
    rllib_iterations: int = option(4, min=1)
    """timed PPO iterations per RLlib row (after one warm-up iteration)"""
    shard_envs: int = option(4096, min=1)
    """num_envs of the sharded-env rows (1 and 2 worker processes)"""
    project_workers: tuple[int, ...] = option((2, 4, 8, 16), min=2)
    """worker counts whose steps/s the shards section projects for a machine with that many free cores"""
    retention_envs: int = option(1024, min=2)
    """customers stepped together in the Retention-v0 vector row"""
    random_dnn: bool = False
    """when the shipped weights are missing, time the DNN path with random weights"""
    skip: tuple[Section, ...] = ()
    """sections to skip: single, make_vec, observe, sb3_vec, forward, ppo, memory, rllib, shards, retention, inventory"""

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ValueError(f"argument --seconds: expected a number > 0 (seconds per measurement), got {self.seconds!r}")


class Report:
    """The run's result: machine, rows and messages, printed as they come (stderr) and at the end (stdout)."""

    def __init__(self, args: Args, argv: list[str] | None, dnn: str) -> None:
        import numba
        import numpy as np
        import torch

        from ecomsim.config import EnvConfig

        self.device = args.device
        cuda = torch.cuda.is_available()
        self.result: dict[str, Any] = {
            "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
            "env_id": ENV_ID,
            "catalog": EnvConfig().catalog,
            "machine": {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
                        "numba": numba.__version__, "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                        "blas_threads": args.threads, "cuda": torch.cuda.get_device_name(0) if cuda else None,
                        "load_avg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
            "dnn": dnn,
            "rows": [],
            "messages": [],
        }

    def say(self, msg: str) -> None:
        self.result["messages"].append(msg)
        print(msg, file=sys.stderr, flush=True)

    def add(self, section: str, shopper: str, num_envs: int, value: float | None, unit: str = "steps/s",
            note: str = "") -> None:
        self.result["rows"].append({"section": section, "shopper": shopper, "num_envs": num_envs, "device": self.device,
                                    "value": None if value is None else round(value), "unit": unit, "note": note})
        shown = "unavailable" if value is None else f"{value:,.0f} {unit}"
        print(f"  {section:<9} {shopper:<9} n={num_envs:<6} {shown}  {note}", file=sys.stderr, flush=True)


# ============================================================== sections
SHOPPERS = ("dnn", "reference")


def measure_single(rep: Report, sh: Shoppers, args: Args) -> None:
    for s in SHOPPERS:
        kw = sh.kwargs(s)
        rep.add("single", s, 1, None if kw is None else bench_single(kw, args.seconds),
                note="" if kw is not None else sh.dnn_reason)


def measure_forward(rep: Report, sh: Shoppers, args: Args) -> dict[int, dict[str, float]]:
    """Rows/s of the behaviour model's forward per batch size (the limit of the DNN env rows)."""
    forward: dict[int, dict[str, float]] = {}
    for n in args.sizes:
        if sh.dnn is None:
            rep.add("forward", "dnn", n, None, "rows/s", sh.dnn_reason)
            continue
        forward[n] = f = bench_forward(sh.model(args.device), n, args.device, args.seconds)
        rep.add("forward", "dnn", n, f["limit"], "rows/s", " ".join(f"{k}={v:,.0f}" for k, v in f.items() if k != "limit"))
    return forward


def measure_make_vec(rep: Report, sh: Shoppers, args: Args, forward: dict[int, dict[str, float]]) -> None:
    for s in SHOPPERS:
        for n in args.sizes:
            kw = sh.kwargs(s)
            if kw is None:
                rep.add("make_vec", s, n, None, note=sh.dnn_reason)
            elif n * OBS_FLOATS * 4 * 40 / 2**20 > mem_available_mb():  # ~40 float32 obs-sized temporaries
                rep.add("make_vec", s, n, None, note="skipped: not enough free memory")
            else:
                v = bench_make_vec(kw, n, args.seconds)
                note = f"{v / forward[n]['limit']:.0%} of forward" if s == "dnn" and n in forward else ""
                rep.add("make_vec", s, n, v, note=note)


def measure_observe(rep: Report, sh: Shoppers, args: Args) -> None:
    kw = sh.kwargs("reference")  # the observation does not depend on the shopper model
    for n in [n for n in args.sizes if n >= 1024]:
        rep.add("observe", "any", n, bench_observe(kw, n, args.seconds), "rows/s",
                "core.observe() alone: part of every make_vec step")


def measure_sb3_vec(rep: Report, sh: Shoppers, args: Args) -> None:
    for s in SHOPPERS:
        for n in sorted({args.ppo_envs, 64, 1024}):  # ppo_envs: the env's share of the PPO rows
            kw = sh.kwargs(s)
            rep.add("sb3_vec", s, n, None if kw is None else bench_sb3_vec(kw, n, args.seconds),
                    note="" if kw is not None else sh.dnn_reason)


def measure_ppo(rep: Report, sh: Shoppers, args: Args) -> None:
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    from agents.vec_env import EcomSB3VecEnv

    n = args.ppo_envs
    for s in SHOPPERS:
        if sh.kwargs(s) is None:
            rep.add("ppo", s, n, None, note=sh.dnn_reason)
            continue
        native = bench_ppo(EcomSB3VecEnv(n, env_id=ENV_ID, **sh.kwargs(s)), args.ppo_steps)
        rep.add("ppo", s, n, native, note="native EcomSB3VecEnv")
        dummy = bench_ppo(DummyVecEnv([lambda: gym.make(ENV_ID, **sh.kwargs(s)) for _ in range(n)]), args.ppo_steps)
        rep.add("ppo", s, n, dummy, note=f"DummyVecEnv of gym.make; native is {native / dummy:.1f}x")


def measure_memory(rep: Report, sh: Shoppers, args: Args) -> None:
    s = "dnn" if sh.dnn is not None else "reference"
    mem = bench_memory(sh.kwargs(s), args.long_envs, args.long_steps)
    mem["shopper"] = s
    rep.result["memory"] = mem
    rep.add("memory", s, args.long_envs, mem["steps_per_s"],
            note=f"{mem['env_steps']:,} steps: RSS {mem['rss_after_warmup_mb']} -> {mem['rss_end_mb']} MiB "
                 f"(growth {mem['growth_after_warmup_mb']} MiB), peak {mem['peak_rss_process_mb']} MiB")


def measure_rllib(rep: Report, sh: Shoppers, args: Args) -> None:
    s, n = ("dnn" if sh.dnn is not None and "shopper_factory" not in sh.dnn else "reference"), args.ppo_envs
    if importlib.util.find_spec("ray") is None:
        rep.add("rllib", s, n, None, note='unavailable: Ray RLlib is not installed (an optional extra: '
                                          'pip install -e ".[rllib]")')
        return
    from agents.rllib_train import throughput

    for runners in args.rllib_runners:
        t = throughput(ENV_ID, sh.kwargs(s), runners, n, args.rllib_iterations)
        rep.add("rllib", s, n, t["train"], note=f"RLlib PPO, {runners} env runners x {n // max(1, runners)} sessions: "
                                                f"{t['sample_share']:.0%} of it sampling, {t['env_share']:.0%} of that "
                                                "in the env")
    t = throughput(ENV_ID, sh.kwargs(s), 0, n, args.rllib_iterations, vectorize="sync")
    rep.add("rllib", s, n, t["train"], note=f"RLlib PPO, 0 env runners, RLlib's default sync mode: {n} one-session "
                                            f"envs ({t['env_share']:.0%} of sampling in the env)")


def measure_shards(rep: Report, sh: Shoppers, args: Args) -> None:
    s = "dnn" if sh.dnn is not None else "reference"
    n = args.shard_envs
    m = bench_shards(sh.kwargs(s), n, 2 * args.seconds)
    rep.result["shards"] = m
    one = m["one_process_cpu_ms"]
    rep.add("shards", s, n, m["steps_per_s"][1], note=f"num_workers=1 (one process): {one:.1f} CPU ms per step, "
                                                      f"{1000 * n / one:,.0f} steps/s on a free core")
    workers = ", ".join(f"{c:.1f}" for c in m["worker_cpu_ms"])
    rep.add("shards", s, n, m["steps_per_s"][2], note=f"num_workers=2: {m['ratio']:.2f}x one process; CPU ms per step: "
                                                      f"parent {m['parent_cpu_ms']:.1f}, workers {workers}")
    for w, p in project_shards(sh.kwargs(s), n, m, args.project_workers, args.seconds).items():
        rep.add("shards", s, n, p["steps_per_s"],
                note=f"num_workers={w} PROJECTED for {w} free cores ({p['steps_per_s'] * one / 1000 / n:.1f}x one "
                     f"process on a free core): parent {m['parent_cpu_ms']:.1f} + {w - 2} x {m['message_ms']:.2f} ms "
                     f"messages + {p['worker_ms']:.1f} ms shard step (x{p['overhead']:.2f} for shared memory)")


def measure_inventory(rep: Report, sh: Shoppers, args: Args) -> None:
    for s in SHOPPERS:  # Inventory-v0 builds its own shoppers: no random-weights stand-in
        if s == "dnn" and (sh.dnn is None or "shopper_factory" in sh.dnn):
            rep.add("inventory", s, 1, None, "store-days/s", sh.dnn_reason or "unavailable: no shipped DNN weights")
            continue
        days, sessions = bench_inventory({"user_model": s}, args.seconds)
        rep.add("inventory", s, 1, days, "store-days/s", f"ecomsim/Inventory-v0, registered traffic, random orders: "
                                                          f"{sessions:,.0f} sessions/s")


def measure_retention(rep: Report, sh: Shoppers, args: Args) -> None:
    from agents.retention import bench_retention

    for s in SHOPPERS:
        if s == "dnn" and (sh.dnn is None or "shopper_factory" in sh.dnn):
            rep.add("retention", s, 1, None, "visits/s", sh.dnn_reason or "the shipped DNN weights only")
            continue
        for n in (1, args.retention_envs):
            b = bench_retention(s, n, args.seconds)
            rep.add("retention", s, n, b["visits_per_s"], "visits/s",
                    f"Retention-v0: {b['steps_per_s']:,.0f} decisions/s, {b['customer_years_per_s']:,.1f} customer-years/s")


# ================================================================== main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    import torch

    import ecomsim  # noqa: F401  (registers the ids)

    if args.long_steps > 0 and "memory" not in args.skip:
        check_env_memory("--long-envs", args.long_envs, {})
    sh = Shoppers(args.random_dnn)
    rep = Report(args, argv, sh.dnn_note if sh.dnn is not None else f"unavailable: {sh.dnn_reason}")
    if args.device == "cuda" and not torch.cuda.is_available():
        rep.say(f"--device {args.device}: no CUDA device here (torch.cuda.is_available() is False); every row is skipped")
        return finish(rep.result, args)
    if args.device == "cuda":
        rep.say("the simulation core runs on CPU (EnvConfig.device accepts only 'cpu' so far); env rows on cuda are "
                "skipped, the forward rows run on cuda")

    def todo(section: str) -> bool:
        return section not in args.skip and (args.device == "cpu" or section == "forward")  # the core steps on the CPU

    if todo("single"):
        measure_single(rep, sh, args)
    forward = measure_forward(rep, sh, args) if todo("forward") else {}
    if todo("make_vec"):
        measure_make_vec(rep, sh, args, forward)
    if todo("observe"):
        measure_observe(rep, sh, args)
    if todo("sb3_vec"):
        measure_sb3_vec(rep, sh, args)
    if todo("ppo"):
        measure_ppo(rep, sh, args)
    if todo("memory") and args.long_steps > 0:
        measure_memory(rep, sh, args)
    if todo("rllib"):
        measure_rllib(rep, sh, args)
    if todo("shards"):
        measure_shards(rep, sh, args)
    if todo("retention"):
        measure_retention(rep, sh, args)
    if todo("inventory"):
        measure_inventory(rep, sh, args)
    return finish(rep.result, args)


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


def finish(result: dict[str, Any], args: Args) -> int:
    """Check the targets, print the table (and the JSON line with ``--json``); exit status 0."""
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
    return 0


if __name__ == "__main__":
    run(main)
