"""The explanation report: a tiny policy's HTML page opens (parses) and holds its sections; policy attributions."""

from __future__ import annotations

from html.parser import HTMLParser

import gymnasium as gym
import numpy as np
import pytest

from ecomsim.data.reference_logs import log_reference_world

pytest.importorskip("captum", reason="explanations need the optional extra 'explain' (captum)")
from stable_baselines3 import DQN, PPO  # noqa: E402

from ecomsim.explain.policy import explain_policy  # noqa: E402
from ecomsim.explain.report import SECTIONS, build_report, write_report  # noqa: E402


class _Page(HTMLParser):
    """Collects section ids, embedded images and table rows; fails on tags left open."""

    def __init__(self) -> None:
        super().__init__()
        self.sections, self.images, self.rows, self.stack = [], [], 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id"))
        if tag == "img":
            self.images.append(a.get("src", ""))
        if tag == "tr":
            self.rows += 1
        if tag not in ("meta", "img", "br"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()


def test_report_of_a_tiny_policy(tmp_path):
    env = gym.make("ecomsim/Recommend-v0", max_steps=6, num_candidates=8)
    model = PPO("MlpPolicy", env, n_steps=16, batch_size=16, seed=0, device="cpu")
    model.learn(16)
    page = build_report(model, env, steps_data=log_reference_world(40, seed=5).steps, num_sessions=2,
                        policy_observations=12, importance_sample=20)
    path = write_report(str(tmp_path / "r" / "explain.html"), page)
    parser = _Page()
    parser.feed(open(path, encoding="utf-8").read())
    parser.close()
    assert parser.stack == []
    assert parser.sections == list(SECTIONS)
    assert len(parser.images) == 2 and all(src.startswith("data:image/png;base64,iVBOR") for src in parser.images)
    for text in ("Sessions step by step", "session seed 0", "session seed 1", "chosen.", "price_vs_budget",
                 "patience", "top reasons"):
        assert text in page
    assert parser.rows > 10
    with pytest.raises(ValueError, match="is a directory"):
        write_report(str(tmp_path), page)


def test_policy_attributions_name_the_layout_and_are_complete():
    env = gym.make("ecomsim/Recommend-v0")
    core = env.unwrapped.core
    obs = np.stack([env.reset(seed=s)[0] for s in range(16)])
    for model in (PPO("MlpPolicy", env, n_steps=16, batch_size=16, seed=0, device="cpu"),
                  DQN("MlpPolicy", env, seed=0, device="cpu", learning_starts=1)):
        pe = explain_policy(model, obs, core)
        assert pe.attributions.shape == (16, len(pe.names))
        assert pe.names[0] == f"portrait.{core.layout.portrait_names[0]}"
        assert f"chosen.{core.layout.candidate_names[-1]}" in pe.names
        assert np.abs(pe.completeness_gap).max() < 1e-3 * max(1.0, float(np.abs(pe.score).max()))
        groups = pe.importance()
        assert {"chosen.affinity", "others.price_vs_budget", "portrait.segment"} <= set(groups.index)
        assert groups["mean_abs_attribution"].is_monotonic_decreasing
    with pytest.raises(ValueError, match=r"obs must be \(n, "):
        explain_policy(model, obs[:, :-1], core)


@pytest.mark.parametrize("env_id, algo", [("ecomsim/Slate-v0", "ppo"), ("ecomsim/Recommend-v0", "dqn")])
def test_policy_attributions_of_the_projects_candidate_policies(env_id, algo):
    """The default run's policies (agents.policies): the explained candidate is the one the model picks."""
    from agents.policies import CandidateActorCriticPolicy, CandidateDQNPolicy, obs_layout

    env = gym.make(env_id)
    layout = dict(obs_layout(env.unwrapped.core))
    if algo == "ppo":
        model = PPO(CandidateActorCriticPolicy, env, policy_kwargs=layout, n_steps=16, batch_size=16, seed=0, device="cpu")
    else:
        model = DQN(CandidateDQNPolicy, env, policy_kwargs=layout, learning_starts=1, seed=0, device="cpu")
    obs = np.stack([env.reset(seed=s)[0] for s in range(8)])
    pe = explain_policy(model, obs, env.unwrapped.core)
    picked = np.asarray(model.predict(obs, deterministic=True)[0]).reshape(8, -1)[:, 0]  # the top slot of a slate
    assert np.array_equal(pe.chosen, picked)
    assert np.abs(pe.completeness_gap).max() < 1e-3 * max(1.0, float(np.abs(pe.score).max()))


def test_explain_script_writes_the_report_of_a_saved_agent(tmp_path):
    """scripts/explain.py on a tiny PPO in the project's model format: the page opens and holds every section."""
    import importlib.util
    import sys
    from pathlib import Path

    from agents.train import AgentTrainConfig, train

    run_dir = tmp_path / "run"
    train(AgentTrainConfig(algo="ppo", env_id="ecomsim/Slate-v0", timesteps=64, num_envs=4, device="cpu",
                           hyperparams={"n_steps": 16, "batch_size": 32}, eval_every=0, progress_bar=False,
                           env_options={"max_steps": 5}), run_dir)
    script = Path(__file__).resolve().parents[1] / "scripts" / "explain.py"
    spec = importlib.util.spec_from_file_location("_explain_script", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules["_explain_script"] = module  # dataclasses resolve the Args class's annotations through it
    spec.loader.exec_module(module)
    out = tmp_path / "page" / "explain.html"
    assert module.main(["--policy", f"ppo:{run_dir / 'model.pt'}", "--out", str(out), "--sessions", "2",
                        "--policy-observations", "8", "--importance-steps", "10", "--max-steps", "4"]) == 0
    parser = _Page()
    parser.feed(out.read_text(encoding="utf-8"))
    parser.close()
    assert parser.stack == [] and parser.sections == list(SECTIONS) and len(parser.images) == 2
    assert "session seed 1" in out.read_text() and "ppo:" in out.read_text()
    with pytest.raises(SystemExit):  # a baseline has no network to attribute: refused before any work
        module.main(["--policy", "greedy"])
