"""scripts/benchmark.py runs end to end on tiny budgets and reports every section (no timing is checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_script_smoke() -> None:
    cmd = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--json", "--seconds", "0.03", "--sizes", "1,8",
           "--long-steps", "64", "--long-envs", "8", "--ppo-envs", "2", "--ppo-steps", "128", "--shard-envs", "8",
           "--project-workers", "4", "--retention-envs", "8", "--skip", "rllib"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    sections = {r["section"] for r in result["rows"]}
    assert sections == {"single", "forward", "make_vec", "sb3_vec", "ppo", "memory", "shards", "retention", "inventory"}
    retention = [r for r in result["rows"] if r["section"] == "retention"]
    assert [(r["shopper"], r["num_envs"]) for r in retention] == [("dnn", 1), ("dnn", 8), ("reference", 1),
                                                                   ("reference", 8)]
    assert all("customer-years/s" in r["note"] for r in retention)
    shards = [r["note"] for r in result["rows"] if r["section"] == "shards"]
    assert [n.split(" ")[0].rstrip(":") for n in shards] == ["num_workers=1", "num_workers=2", "num_workers=4"]
    assert result["machine"]["torch_threads"] == 1
    assert result["memory"]["env_steps"] == 64
    assert len(result["targets"]) == 4
    assert "torch threads=1" in proc.stdout


def test_benchmark_cuda_without_gpu_says_so() -> None:
    import torch

    if torch.cuda.is_available():
        return  # the message is only for machines without CUDA
    cmd = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--device", "cuda"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0
    assert "no CUDA device" in proc.stdout


def test_benchmark_rllib_rows_say_why_when_ray_is_absent() -> None:
    import importlib.util

    if importlib.util.find_spec("ray") is not None:
        return  # the rows are measured there (minutes): README "Ray RLlib" has the figures
    skip = "single,make_vec,observe,sb3_vec,forward,ppo,memory,shards,retention,inventory"
    cmd = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--json", "--skip", skip]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(proc.stdout.strip().splitlines()[-1])["rows"]
    assert [(r["section"], r["value"]) for r in rows] == [("rllib", None)]
    assert "Ray RLlib is not installed" in rows[0]["note"]
