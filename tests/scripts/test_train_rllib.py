"""scripts/train_rllib.py: a clear line without Ray; with Ray, the SB3 script's outputs (results.json keys, tags)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HAS_RAY = importlib.util.find_spec("ray") is not None


@pytest.mark.skipif(HAS_RAY, reason="Ray is installed here: the slow test below runs the script")
def test_without_ray_the_script_says_how_to_install_it(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_rllib.py"), "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2
    assert 'Ray RLlib is not installed: pip install -e ".[rllib]"' in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
@pytest.mark.skipif(not HAS_RAY, reason='Ray RLlib is an optional extra: pip install -e ".[rllib]" (docs/scale.md)')
def test_a_tiny_run_writes_what_train_agent_writes(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from ecomsim.metrics import EVAL_TAGS, TAGS

    out = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "scripts" / "train_rllib.py"), "--num-env-runners", "0",
           "--num-envs-per-env-runner", "8", "--timesteps", "1024", "--train-batch-size", "512", "--eval-every", "512",
           "--eval-sessions", "50", "--sessions", "100", "--user-model", "reference", "--baselines", "random",
           "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    for key in ("config", "resolved_hyperparams", "timesteps", "train_seconds", "eval_seconds", "eval_sessions",
                "eval_seed", "env_options", "scores", "learning_curve", "training_sessions", "model"):
        assert key in results, key
    assert set(results["scores"]) == {"ppo", "random"} and results["timesteps"] >= 1024
    assert (out / "report.png").is_file() and (out / "checkpoint").is_dir()
    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    assert set(TAGS.values()) | set(EVAL_TAGS.values()) <= set(events.Tags()["scalars"])
