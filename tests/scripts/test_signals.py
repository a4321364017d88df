"""SIGTERM behaves like Ctrl-C (checkpoint, one line, exit 143, --resume continues); kill -9 leaves a usable checkpoint;
seeded runs are identical across processes."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from agents.model_files import CHECKPOINT, MODEL, load_agent

ROOT = Path(__file__).resolve().parents[2]
BUDGET = 20_000
ARGS = ["--num-envs", "8", "--sessions", "20", "--eval-sessions", "8", "--eval-every", "0", "--checkpoint-every", "256",
        "--no-progress", "--user-model", "reference", "--hyperparams", '{"n_steps": 16, "batch_size": 64}',
        "--baselines", ""]


def start(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "scripts" / "train_agent.py"), *ARGS, "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def wait_for_checkpoint(proc: subprocess.Popen, out: Path, timeout: float = 240.0) -> None:
    end = time.time() + timeout
    while not (out / CHECKPOINT).exists():
        if proc.poll() is not None:
            raise AssertionError(f"ended before its first checkpoint ({proc.returncode}): {proc.communicate()}")
        if time.time() > end:
            proc.kill()
            raise AssertionError("no checkpoint in time")
        time.sleep(0.05)


def steps(out: Path) -> int:
    return json.loads((out / "state.json").read_text())["num_timesteps"]


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_resume_reaches_the_budget(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = start(out, "--timesteps", str(BUDGET))
    wait_for_checkpoint(proc, out)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, (stdout, stderr)
    line = [x for x in stderr.splitlines() if x.startswith("SIGTERM: stopped at")]
    assert len(line) == 1, stderr
    stopped_at = steps(out)
    assert 256 <= stopped_at < BUDGET and f"stopped at {stopped_at:,} of {BUDGET:,} steps" in line[0]
    assert f"checkpoint saved in {out / CHECKPOINT}; continue with: python3 scripts/train_agent.py" in line[0]
    assert line[0].endswith("--resume") and not (out / MODEL).exists()
    resume = shlex.split(line[0].split("continue with: ", 1)[1])[2:]  # the printed command's flags
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_agent.py"), *resume], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "results.json").read_text())["timesteps"] >= BUDGET
    assert load_agent(out / MODEL).card["num_timesteps"] >= BUDGET


@pytest.mark.slow
def test_kill_9_leaves_a_checkpoint_resume_can_use(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = start(out, "--timesteps", str(BUDGET))
    wait_for_checkpoint(proc, out)
    time.sleep(0.5)  # somewhere in the middle of training, maybe of a checkpoint write
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    from agents.checkpoint import load_checkpoint

    ckpt = load_checkpoint(out, "ppo")  # whole: the kill can only have torn a temporary file
    assert ckpt.counters["num_timesteps"] >= 256 and ckpt.run_state["num_timesteps"] == ckpt.counters["num_timesteps"]
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_agent.py"), *ARGS, "--out", str(out),
                           "--timesteps", str(BUDGET), "--resume"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "results.json").read_text())["timesteps"] >= BUDGET


@pytest.mark.slow
def test_seeded_runs_are_identical_across_processes(tmp_path: Path) -> None:
    procs = [start(tmp_path / name, "--timesteps", "1024", "--seed", "3") for name in ("a", "b")]
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
    a, b = (load_agent(tmp_path / name / MODEL).policy.state_dict() for name in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_first_signal_asks_the_loop_to_stop_a_second_ends_at_once() -> None:
    from agents.signals import Interrupted, resume_command, stop_signals

    before = signal.getsignal(signal.SIGTERM)
    with stop_signals() as stop:
        with stop.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)  # the handler runs between bytecodes of the main thread
            assert stop() and stop.signum == signal.SIGTERM and stop.exit_code == 143
            with pytest.raises(Interrupted, match="SIGTERM received"):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)
        with pytest.raises(Interrupted) as exc:  # outside a loop that can stop cleanly: at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        assert exc.value.signum == signal.SIGINT
    assert signal.getsignal(signal.SIGTERM) is before
    assert resume_command("scripts/x.py", ["--a", "1", "--resume", "false", "--out", "r u n"]) == \
        "python3 scripts/x.py --a 1 --out 'r u n' --resume"


def test_an_interrupted_script_exits_with_128_plus_the_signal(tmp_path: Path) -> None:
    """A signal outside a training loop (here while the script loads) ends it with one line and 143, never a traceback."""
    code = ("import os, signal, sys; sys.argv = ['x']; from agents.cli import run\n"
            "def main():\n    os.kill(os.getpid(), signal.SIGTERM)\n    import time; time.sleep(5)\n    return 0\n"
            "from agents.signals import stop_signals\n"
            "with stop_signals():\n    run(main)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 143 and proc.stderr.strip() == "SIGTERM: stopped (SIGTERM received)", proc.stderr
