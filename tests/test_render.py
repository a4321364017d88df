"""Rendering everywhere: the three modes through gym.make, make_vec and the SB3 VecEnv; what a picture shows;
rendering never changes a trajectory; RecordVideo; the SB3 one-liners; the shopper models' describe()."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import ecomsim
from agents.vec_env import EcomSB3VecEnv
from ecomsim import render
from ecomsim.envs import EcomEnv, EcomVectorEnv

IDS = list(ecomsim.ENV_IDS)
MODELS = ("reference", "dnn")
ROOT = Path(__file__).resolve().parents[1]


def read_line(frame: np.ndarray, line: int) -> str:
    """The text of grid line ``line`` of a picture, decoded glyph by glyph ('~' where a cell holds no glyph,
    e.g. under a bar): what a person reads there."""
    top = render.MARGIN + line * render.LINE_H + (render.LINE_H - render.GLYPH_H) // 2
    cols = (render.WIDTH - 2 * render.MARGIN) // render.CHAR_W
    out = []
    for c in range(cols):
        x = render.MARGIN + c * render.CHAR_W
        cell = frame[top:top + render.GLYPH_H, x:x + render.CHAR_W]
        ink = (cell != cell[0, render.CHAR_W - 1]).any(axis=-1)  # the last column of a cell is spacing
        hits = np.flatnonzero((render._GLYPHS == ink).all(axis=(1, 2)))
        out.append(render._CHARS[hits[0]] if len(hits) else "~")
    return "".join(out).rstrip()


def _stepped(env_id: str, user_model: str, mode: str, steps: int = 4, **kw):
    env = gym.make(env_id, user_model=user_model, render_mode=mode, **kw)
    env.reset(seed=3)
    info = None
    for _ in range(steps):
        *_, term, trunc, info = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
            info = None
    return env, info


# -------------------------------------------------------------- modes
@pytest.mark.parametrize("mode", render.RENDER_MODES)
@pytest.mark.parametrize("env_id", IDS)
def test_every_render_mode_through_make_make_vec_and_the_sb3_vec_env(mode, env_id, monkeypatch, capsys):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(var, raising=False)  # human without a display: the ansi trace on stdout
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        single = gym.make(env_id, render_mode=mode, user_model="reference")
        vec = gym.make_vec(env_id, num_envs=3, render_mode=mode, user_model="reference")
        sb3 = EcomSB3VecEnv(3, env_id=env_id, render_mode=mode, user_model="reference")
    single.reset(seed=0)
    single.step(single.action_space.sample())
    vec.reset(seed=0)
    vec.step(vec.action_space.sample())
    sb3.reset()
    sb3.step(np.stack([sb3.action_space.sample() for _ in range(3)]))
    frame, frames, sb3_frames = single.render(), vec.render(), sb3.env_method("render")
    if mode == "human":
        assert frame is None and frames is None and sb3_frames == [None] * 3
        assert "shopper:" in capsys.readouterr().out  # printed at reset and step, as Gymnasium's human envs do
    elif mode == "ansi":
        assert isinstance(frame, str) and len(frames) == 3 and all(isinstance(f, str) for f in frames + tuple(sb3_frames))
    else:
        h = render.picture_height(5, single.unwrapped.config.slate_size)
        assert frame.shape == (h, render.WIDTH, 3) and frame.dtype == np.uint8 and h % 16 == 0
        assert isinstance(frames, tuple) and [f.shape for f in frames] == [frame.shape] * 3
        assert [f.shape for f in sb3.get_images()] == [frame.shape] * 3
        assert sb3.render().shape == (2 * h, 2 * render.WIDTH, 3)  # SB3 tiles the sub-envs' pictures


def test_bad_render_mode():
    with pytest.raises(ValueError, match=r"render_mode must be one of \['ansi', 'rgb_array', 'human'\] or None, "
                                         r"got 'rgb-array'\. Did you mean 'rgb_array'\?"):
        EcomEnv(render_mode="rgb-array", user_model="reference")
    with pytest.raises(RuntimeError, match="call reset"):
        EcomVectorEnv(2, render_mode="ansi", user_model="reference").render()


# ------------------------------------------------------- what it shows
@pytest.mark.parametrize("user_model", MODELS)
def test_the_picture_shows_items_outcomes_counters_and_the_shopper(user_model):
    env, info = _stepped("ecomsim/Slate-v0", user_model, "rgb_array", steps=6)
    if info is None:
        env, info = _stepped("ecomsim/Slate-v0", user_model, "rgb_array", steps=2)
    frame = env.render()
    core, shopper = env.unwrapped.core, env.unwrapped.core.shopper
    header = read_line(frame, 0)
    assert f"STEP {info['session_length']}/50" in header and f"{user_model.upper()} SHOPPER" in header
    assert read_line(frame, 1).startswith(f"IMPRESSIONS {info['session_impressions']}  CLICKS {info['session_clicks']}")
    described = shopper.describe(np.array([0]))
    for i, q in enumerate(shopper.quantities):
        line = read_line(frame, 3 + i)
        assert line.startswith(q.label.upper()) and f"{described[q.name][0]:8.3f}".strip() in line
    first_slot = 5 + len(shopper.quantities)
    cat = core.catalog
    for slot, item in enumerate(info["items"]):
        line = read_line(frame, first_slot + 2 * slot)
        if item < 0:
            assert line.endswith("EMPTY")
            continue
        name = cat.category_names[cat.category[item]].upper()[:12]
        assert f"{item:>5}  {name}" in line and f"{cat.price[item]:.2f}  {cat.quality[item]:.2f}" in line
        assert line.endswith("SHOWN  CLICK  CART  BUY")
        top = render.MARGIN + (first_slot + 2 * slot) * render.LINE_H + (render.LINE_H - render.GLYPH_H) // 2
        for k, flag in enumerate((True, info["clicked"][slot], info["carted"][slot], info["purchased"][slot])):
            x = render.MARGIN + (62 + 7 * k) * render.CHAR_W
            cell = frame[top:top + render.GLYPH_H, x:x + render.CHAR_W]
            lit = render.OUTCOME_COLOURS[k] if flag else render.FAINT
            assert (cell == lit).all(axis=-1).any(), f"slot {slot} outcome {k} drawn {'lit' if flag else 'dim'}"
        assert read_line(frame, first_slot + 2 * slot + 1).strip() == "WHY:"  # the reasons line, left empty


def test_ansi_says_the_same():
    env, info = _stepped("ecomsim/Recommend-v0", "reference", "ansi", steps=3)
    text = env.render()
    item = int(info["items"][0])
    cat = env.unwrapped.core.catalog
    assert f"item {item} {cat.category_names[cat.category[item]]} price {cat.price[item]:.2f}" in text
    assert "patience (latent)" in text and "P(stay | no click)" in text
    assert f"clicks {info['session_clicks']}" in text


def test_views_carry_the_reasons_line():
    env, info = _stepped("ecomsim/Slate-v0", "reference", "ansi", steps=2)
    batched = {k: np.asarray(v)[None] for k, v in info.items()}
    view = render.step_views(env.unwrapped.core, batched, [0], reasons=[["cheap", "", "over budget", "", ""]])[0]
    assert "why: cheap" in render.ansi(view)
    assert read_line(render.picture(view), 5 + 5 + 1).strip() == "WHY: CHEAP"


@pytest.mark.parametrize("user_model", MODELS)
def test_rendering_never_changes_a_trajectory(user_model):
    def run(mode):
        env = gym.make_vec("ecomsim/Slate-v0", num_envs=4, render_mode=mode, user_model=user_model, max_steps=6)
        obs, _ = env.reset(seed=9)
        out = [obs]
        for t in range(25):
            obs, r, term, trunc, _ = env.step(np.full((4, 5), t % 20))
            if mode:
                env.render()
            out += [obs, r, term, trunc]
        return out

    for a, b in zip(run(None), run("rgb_array")):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("user_model", MODELS)
def test_vector_pictures_equal_the_single_envs_pictures(user_model):
    """Sub-env i of the native env draws exactly what a single env in SyncVectorEnv draws, autoresets included."""
    kw = dict(user_model=user_model, render_mode="rgb_array", max_steps=4)
    native = gym.make_vec("ecomsim/Recommend-v0", num_envs=3, **kw)
    sync = gym.make_vec("ecomsim/Recommend-v0", num_envs=3, vectorization_mode="sync", **kw)
    native.reset(seed=2)
    sync.reset(seed=2)
    for t in range(9):
        actions = np.array([t % 20, 3, 7])
        native.step(actions)
        sync.step(actions)
        for a, b in zip(native.render(), sync.render()):
            np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- human
def test_human_mode_shows_the_picture_in_a_window(monkeypatch):
    pytest.importorskip("pygame", reason="pygame is the optional window of render_mode='human' (.[render])")
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # a real SDL window, drawn off screen
    import pygame

    env = EcomEnv(render_mode="human", user_model="reference")
    env._human.fps = 1000  # no pacing in a test
    env.reset(seed=0)
    env.step(1)
    shown = pygame.surfarray.array3d(pygame.display.get_surface()).swapaxes(0, 1)
    view = render.step_views(env.core, {k: np.asarray(v)[None] for k, v in env._last_info.items()}, [0])[0]
    np.testing.assert_array_equal(shown, render.picture(view))
    env.close()


# ---------------------------------------------------------------- video
def test_an_episode_renders_one_frame_per_step_for_recording():
    """What RecordVideo captures (Gymnasium's RenderCollection: render after reset and every step), everywhere."""
    env = gym.wrappers.RenderCollection(gym.make("ecomsim/Recommend-v0", render_mode="rgb_array", max_steps=10))
    env.reset(seed=0)
    steps = 0
    while True:
        *_, term, trunc, _ = env.step(env.action_space.sample())
        steps += 1
        if term or trunc:
            break
    frames = env.render()
    assert len(frames) == steps + 1 and len({f.shape for f in frames}) == 1 and frames[0].dtype == np.uint8


def test_record_video_writes_an_episode(tmp_path):
    pytest.importorskip("moviepy", reason="RecordVideo needs moviepy (pip install -e '.[render]')")
    env = gym.wrappers.RecordVideo(gym.make("ecomsim/Slate-v0", render_mode="rgb_array", max_steps=12),
                                   str(tmp_path / "videos"), episode_trigger=lambda e: e == 0, disable_logger=True)
    env.reset(seed=1)
    steps = 0
    while True:
        *_, term, trunc, _ = env.step(env.action_space.sample())
        steps += 1
        if term or trunc:
            break
    env.close()
    (video,) = (tmp_path / "videos").glob("*.mp4")
    from moviepy import VideoFileClip

    clip = VideoFileClip(str(video))
    height = render.picture_height(len(env.unwrapped.core.shopper.quantities), 5)
    assert round(clip.duration * clip.fps) == steps + 1 and tuple(clip.size) == (render.WIDTH, height)
    clip.close()


# ------------------------------------------------------------ SB3 one-liners
def test_sb3_one_liner_and_make_vec_env():
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    model = PPO("MlpPolicy", "ecomsim/Recommend-v0", n_steps=16, batch_size=16, n_epochs=1, seed=0)
    model.learn(16)
    venv = make_vec_env("ecomsim/Recommend-v0", n_envs=4)
    venv.reset()
    assert venv.render_mode == "rgb_array" and [f.dtype for f in venv.get_images()] == [np.uint8] * 4


@pytest.mark.slow
def test_make_vec_env_with_subprocesses(tmp_path):
    """SubprocVecEnv: the plain id from a script that imports ecomsim (SB3's default forkserver workers import the
    script's modules), and the "ecomsim:" id with spawn workers (they import ecomsim from the id)."""
    script = textwrap.dedent("""
        import sys
        import numpy as np
        import ecomsim  # noqa: F401  (forkserver and spawn workers import this script's modules: ids registered)
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import SubprocVecEnv

        if __name__ == "__main__":
            env_id, method = sys.argv[1], sys.argv[2]
            venv = make_vec_env(env_id, n_envs=4, vec_env_cls=SubprocVecEnv, vec_env_kwargs={"start_method": method},
                                env_kwargs={"user_model": "reference"})
            venv.reset()
            for _ in range(5):
                venv.step(np.zeros(4, dtype=np.int64))
            assert [f.shape[1] for f in venv.get_images()] == [640] * 4
            venv.close()
            print("ok")
    """)
    path = tmp_path / "train.py"
    path.write_text(script)
    for env_id, method in (("ecomsim/Recommend-v0", "forkserver"), ("ecomsim:ecomsim/Recommend-v0", "spawn")):
        done = subprocess.run([sys.executable, str(path), env_id, method], cwd=ROOT, capture_output=True, text=True,
                              timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


# -------------------------------------------------------------- describe
@pytest.mark.parametrize("user_model", MODELS)
def test_describe_names_each_sessions_quantities_and_changes_nothing(user_model):
    env = EcomVectorEnv(5, user_model=user_model, max_steps=8)
    env.reset(seed=4)
    env.step(np.arange(5))
    shopper = env.core.shopper
    full = shopper.describe()
    assert list(full) == [q.name for q in shopper.quantities]
    part = shopper.describe(np.array([3, 1]))
    for name, values in full.items():
        assert values.shape == (5,) and np.isfinite(values).all()
        np.testing.assert_array_equal(part[name], values[[3, 1]])
    assert ((full["p_stay_if_no_click"] >= 0) & (full["p_stay_if_no_click"] <= 1)).all()
    assert ((full["p_buy_if_click"] >= 0) & (full["p_buy_if_click"] <= 1)).all()
    if user_model == "reference":
        np.testing.assert_array_equal(full["patience"], shopper.patience)
        np.testing.assert_array_equal(full["intent"], shopper.intent)
    twin = EcomVectorEnv(5, user_model=user_model, max_steps=8)
    twin.reset(seed=4)
    twin.step(np.arange(5))
    a, b = env.step(np.ones(5, dtype=np.int64)), twin.step(np.ones(5, dtype=np.int64))
    for x, y in zip(a[:4], b[:4]):
        np.testing.assert_array_equal(x, y)
