"""Frames/s of the render modes: is a picture cheap enough to record every step of an evaluation episode?

    python scripts/benchmark_render.py                 # both ids, both shopper models
    python scripts/benchmark_render.py --seconds 1 --json

Per id and shopper model, on one ``gym.make`` env with random actions (resets included):

* ``rgb_array`` / ``ansi``: ``env.render()`` calls per second, each after a step (the step not timed);
* ``step``: env steps/s without rendering, and ``step+rgb_array``: steps/s rendering a picture after each
  step (what ``RecordVideo`` of every episode costs; encoding the video not included).

Times are process CPU time, so other work sharing the machine moves them less than wall time would.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from agents.cli import option, parse_args, pin_threads, run

TARGET_FPS = 500  # rgb_array frames/s: recording an evaluation episode must not dominate its cost


@dataclass
class Args:
    seconds: float = option(2.0, min=0.1)
    """CPU seconds per measurement"""
    json: bool = False
    """also print the results as one JSON object (the last line)"""
    threads: int = option(1, min=1)
    """torch and BLAS threads"""


def measure(env_id: str, user_model: str, mode: str | None, seconds: float, render_only: bool) -> float:
    """Renders/s (``render_only``) or steps/s with a render after each step (``mode`` None: no render)."""
    import gymnasium as gym

    import ecomsim  # noqa: F401  (registers the ids)

    env = gym.make(env_id, user_model=user_model, render_mode=mode)
    env.reset(seed=0)
    env.action_space.seed(0)
    count, spent = 0, 0.0
    while spent < seconds:
        t0 = time.process_time()
        for _ in range(50):
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            if render_only:
                t1 = time.process_time()
                env.render()
                spent += time.process_time() - t1
            elif mode is not None:
                env.render()
            if term or trunc:
                env.reset()
        count += 50
        if not render_only:
            spent += time.process_time() - t0
    return count / spent


def main(argv: list[str] | None = None) -> int:
    args = parse_args(Args, argv, __doc__)
    pin_threads(args.threads)
    rows = []
    for env_id in ("ecomsim/Recommend-v0", "ecomsim/Slate-v0"):
        for user_model in ("dnn", "reference"):
            row = {"env_id": env_id, "user_model": user_model,
                   "rgb_array_fps": measure(env_id, user_model, "rgb_array", args.seconds, True),
                   "ansi_fps": measure(env_id, user_model, "ansi", args.seconds, True),
                   "steps_per_s": measure(env_id, user_model, None, args.seconds, False),
                   "steps_per_s_recording": measure(env_id, user_model, "rgb_array", args.seconds, False)}
            rows.append({k: round(v) if isinstance(v, float) else v for k, v in row.items()})
            r = rows[-1]
            ok = "ok" if r["rgb_array_fps"] >= TARGET_FPS else f"below the {TARGET_FPS} target"
            print(f"{env_id:<22} {user_model:<9} rgb_array {r['rgb_array_fps']:>6,} frames/s ({ok})  "
                  f"ansi {r['ansi_fps']:>6,}/s  step {r['steps_per_s']:>7,}/s  step+rgb_array "
                  f"{r['steps_per_s_recording']:>6,}/s", flush=True)
    if args.json:
        print(json.dumps({"target_rgb_array_fps": TARGET_FPS, "rows": rows}))
    return 0


if __name__ == "__main__":
    run(main)
