"""Agents: policies, bandit, evaluation harness (known answers, reproducibility), training round trips."""

from __future__ import annotations

import glob
import json

import numpy as np
import pytest
from threadpoolctl import threadpool_limits
import torch

from agents.bandit import LinUCBPolicy
from agents.baselines import BASELINES, RandomPolicy
from agents.evaluation import SB3Policy, evaluate, make_eval_env, score
from agents.policies import CandidateActorCriticPolicy, CandidateDQNPolicy, obs_layout
from agents.registry import policy_factory
from agents.train import AgentTrainConfig, load_model, resolve_device, train
from agents.vec_env import EcomSB3VecEnv
from ecomsim.envs import EcomVectorEnv
from ecomsim.shoppers.base import Reaction, ShopperModel

torch.set_num_threads(1)

threadpool_limits(1)  # small matrices: extra BLAS threads only spin on a shared CPU


class ConstantShopper(ShopperModel):
    """Clicks with probability ``p`` whatever is shown, always carts and buys, leaves with probability ``h``."""

    name = "constant"

    def __init__(self, p: float, h: float = 0.0) -> None:
        self.p, self.h = p, h

    def reaction(self, items, positions, rows=None) -> Reaction:
        n, k = items.shape
        return Reaction(click=np.full((n, k), self.p), cart=np.ones((n, k)), purchase=np.ones((n, k)),
                        leave=np.full((n, 3), self.h))


def test_evaluation_known_answer_constant_shopper() -> None:
    # no leaving, max_steps T: every session lasts T steps and converts with 1 - (1 - p)^T
    p, t, n = 0.05, 6, 8000
    env = EcomVectorEnv(num_envs=64, shopper_obj=ConstantShopper(p), max_steps=t)
    res = evaluate(RandomPolicy(), env, n, seed=3)
    m = res.metrics
    assert res.num_sessions == n
    assert m["session_length"].value == t and m["session_length"].low == t
    truth = 1 - (1 - p) ** t
    se = np.sqrt(truth * (1 - truth) / n)
    assert abs(m["conversion_rate"].value - truth) < 3 * se
    assert abs(m["ctr"].value - p) < 3 * np.sqrt(p * (1 - p) / (n * t))


def test_evaluation_known_answer_geometric_length() -> None:
    # leaving with probability h after each step: mean length (1 - (1-h)^T) / h, conversion needs a click first
    p, h, t, n = 0.1, 0.3, 50, 8000
    env = EcomVectorEnv(num_envs=100, shopper_obj=ConstantShopper(p, h), max_steps=t)
    m = evaluate(RandomPolicy(), env, n, seed=4).metrics
    mean_len = (1 - (1 - h) ** t) / h
    assert m["session_length"].low < mean_len < m["session_length"].high
    # P(no click before leaving) = sum_j (1-p)^j (1-h)^(j-1) h  ~ geometric series
    q = (1 - p) * (1 - h)
    truth = 1 - (1 - p) * h / (1 - q)
    assert abs(m["conversion_rate"].value - truth) < 3 * np.sqrt(truth * (1 - truth) / n)


def test_evaluation_reproducible_and_quota() -> None:
    env = make_eval_env({"user_model": "reference"}, num_envs=16)
    a = evaluate(BASELINES["greedy"](), env, 300, seed=7)
    b = evaluate(BASELINES["greedy"](), env, 300, seed=7)
    c = evaluate(BASELINES["greedy"](), env, 300, seed=8)
    assert a.to_dict() == b.to_dict() and a.num_sessions == 300
    assert a.to_dict() != c.to_dict()
    x = evaluate(LinUCBPolicy(), env, 300, seed=7)
    y = evaluate(LinUCBPolicy(), env, 300, seed=7)
    assert x.to_dict() == y.to_dict()
    with pytest.raises(ValueError, match="num_sessions must be a positive integer, got 0"):
        evaluate(RandomPolicy(), env, 0)


def test_bandit_learns_online_and_ignores_empty_slots() -> None:
    env = make_eval_env({"user_model": "reference", "mode": "slate", "slate_size": 5}, num_envs=32)
    bandit = LinUCBPolicy()
    evaluate(bandit, env, 200, seed=1)
    assert bandit.num_updates > 0 and np.abs(bandit.theta).sum() > 0
    # on the reference world it ends well above random after a few thousand sessions
    env1 = make_eval_env({"user_model": "reference"}, num_envs=64)
    learned = evaluate(LinUCBPolicy(), env1, 2000, seed=2).metrics["conversion_rate"]
    rand = evaluate(RandomPolicy(), env1, 2000, seed=2).metrics["conversion_rate"]
    assert learned.low > rand.high
    with pytest.raises(ValueError, match="target must be one of"):
        LinUCBPolicy(target="buy")


def _permute_candidates(obs: np.ndarray, perm: np.ndarray, context_dim: int, m: int) -> np.ndarray:
    n = obs.shape[0]
    cand = obs[:, context_dim:].reshape(n, m, -1)[:, perm]
    return np.concatenate([obs[:, :context_dim], cand.reshape(n, -1)], axis=1)


@pytest.mark.parametrize("env_id", ["ecomsim/Recommend-v0", "ecomsim/Slate-v0"])
def test_candidate_policy_is_order_equivariant(env_id: str) -> None:
    from stable_baselines3 import PPO

    env = EcomSB3VecEnv(4, env_id=env_id, user_model="reference")
    lay = obs_layout(env.core)
    model = PPO(CandidateActorCriticPolicy, env, policy_kwargs=dict(lay, hidden=16), n_steps=8, batch_size=32, seed=0, device="cpu")
    obs = env.reset()
    perm = np.random.default_rng(0).permutation(lay["num_candidates"])
    with torch.no_grad():
        def logits(o):
            t = torch.as_tensor(o)
            return model.policy.action_net(model.policy.mlp_extractor.forward_actor(model.policy.extract_features(t)))
        base = logits(obs).reshape(4, -1, lay["num_candidates"])
        moved = logits(_permute_candidates(obs, perm, lay["context_dim"], lay["num_candidates"])).reshape(4, -1, lay["num_candidates"])
        torch.testing.assert_close(moved, base[:, :, perm])
        v1 = model.policy.predict_values(torch.as_tensor(obs))
        v2 = model.policy.predict_values(torch.as_tensor(_permute_candidates(obs, perm, lay["context_dim"], lay["num_candidates"])))
        torch.testing.assert_close(v1, v2, atol=1e-5, rtol=1e-5)


def test_dqn_q_values_equivariant_and_slate_rejected() -> None:
    from stable_baselines3 import DQN

    env = EcomSB3VecEnv(2, user_model="reference")
    lay = obs_layout(env.core)
    model = DQN(CandidateDQNPolicy, env, policy_kwargs=dict(lay, hidden=16), learning_starts=10, seed=0, device="cpu")
    obs = env.reset()
    perm = np.arange(lay["num_candidates"])[::-1].copy()
    with torch.no_grad():
        q = model.q_net(torch.as_tensor(obs))
        q2 = model.q_net(torch.as_tensor(_permute_candidates(obs, perm, lay["context_dim"], lay["num_candidates"])))
    torch.testing.assert_close(q2, q[:, perm])
    with pytest.raises(ValueError, match="needs a Discrete action space"):
        AgentTrainConfig(algo="dqn", env_id="ecomsim/Slate-v0")


def test_config_and_device_errors() -> None:
    with pytest.raises(ValueError, match="algo must be one of"):
        AgentTrainConfig(algo="a2c")
    with pytest.raises(ValueError, match="unknown ppo hyperparameters"):
        AgentTrainConfig(hyperparams={"learning_rat": 1e-3})
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")
    assert resolve_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        assert resolve_device("auto") == "cpu"
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")


def _tiny(algo: str = "ppo", **kw) -> AgentTrainConfig:
    hp = {"n_steps": 16, "batch_size": 64} if algo == "ppo" else {"learning_starts": 100, "buffer_size": 2000, "batch_size": 64}
    base = dict(algo=algo, timesteps=512, num_envs=8, device="cpu", hyperparams=hp, checkpoint_every=256,
                eval_every=256, eval_sessions=20, progress_bar=False, env_options={"user_model": "reference"})
    base.update(kw)
    return AgentTrainConfig(**base)


def test_train_save_load_resume_and_tensorboard(tmp_path) -> None:
    model, summary = train(_tiny(), tmp_path)
    assert summary["timesteps"] == 512 and len(summary["eval_history"]) == 2
    loaded = load_model(tmp_path / "model.pt", "ppo", device="cpu")
    obs = EcomSB3VecEnv(8, user_model="reference").reset()
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["num_timesteps"] == 512

    resumed, summary2 = train(_tiny(timesteps=1024), tmp_path, resume=True)
    assert resumed.num_timesteps == 1024
    assert [p["timesteps"] for p in summary2["eval_history"]] == [256, 512, 768, 1024]

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for path in glob.glob(str(tmp_path / "tb" / "*" / "events.out.tfevents.*")):
        acc = EventAccumulator(path)
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    for tag in ("ecom/ctr", "ecom/conversion_rate", "ecom/revenue_per_session", "ecom/session_length",
                "eval/conversion_rate", "rollout/ep_rew_mean", "train/value_loss"):
        assert tag in tags, (tag, sorted(tags))
    with pytest.raises(FileNotFoundError, match="no checkpoint.pt"):
        train(_tiny(), tmp_path / "empty", resume=True)


def test_ctrl_c_saves_a_checkpoint_and_resume_continues(tmp_path) -> None:
    from stable_baselines3.common.callbacks import BaseCallback

    class Interrupt(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps >= 300:
                raise KeyboardInterrupt
            return True

    with pytest.raises(KeyboardInterrupt):
        train(_tiny(checkpoint_every=10_000), tmp_path, extra_callbacks=[Interrupt()])
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["num_timesteps"] == 304  # saved where it stopped: 38 vector steps of 8 envs
    model, summary = train(_tiny(), tmp_path, resume=True)
    assert 512 <= model.num_timesteps < 512 + 128  # continues to the target (whole PPO rollouts)


def test_train_is_reproducible_under_a_seed(tmp_path) -> None:
    m1, _ = train(_tiny(eval_every=0), tmp_path / "a")
    m2, _ = train(_tiny(eval_every=0), tmp_path / "b")
    for p1, p2 in zip(m1.policy.parameters(), m2.policy.parameters()):
        torch.testing.assert_close(p1, p2, rtol=0, atol=0)


def test_dqn_trains_and_scores(tmp_path) -> None:
    model, summary = train(_tiny("dqn", eval_every=0), tmp_path)
    assert summary["timesteps"] == 512
    res = score(lambda: SB3Policy(model, "dqn"), {"user_model": "reference"}, 50, num_envs=16)
    assert set(res) == {"sim", "reference"} and res["sim"].num_sessions == 50


def test_policy_factory() -> None:
    assert isinstance(policy_factory("bandit")(), LinUCBPolicy)
    with pytest.raises(ValueError, match="Did you mean 'popularity'"):
        policy_factory("populárity")
    with pytest.raises(ValueError, match="ppo:PATH"):
        policy_factory("a2c:model.zip")
    with pytest.raises(FileNotFoundError, match="ppo model '/nonexistent/model.pt' does not exist"):
        policy_factory("ppo:/nonexistent/model.pt")


@pytest.mark.slow
def test_short_ppo_run_beats_random(tmp_path) -> None:
    config = AgentTrainConfig(timesteps=200_000, device="cpu", eval_every=0, progress_bar=False, seed=0)
    model, _ = train(config, tmp_path)
    env = make_eval_env({"mode": "recommend"}, num_envs=128)
    ppo = evaluate(SB3Policy(model, "ppo"), env, 4000, seed=1).metrics["conversion_rate"]
    rand = evaluate(RandomPolicy(), env, 4000, seed=1).metrics["conversion_rate"]
    assert ppo.low > rand.high, (ppo, rand)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_envs": 0}, r"AgentTrainConfig.num_envs must be an integer >= 1, got 0"),
    ({"timesteps": 0}, r"AgentTrainConfig.timesteps must be an integer >= 1, got 0"),
    ({"eval_every": -1}, r"AgentTrainConfig.eval_every must be an integer >= 0, got -1"),
    ({"hyperparams": {"num_envs": 0}}, r"AgentTrainConfig.hyperparams\['num_envs'\] must be an integer >= 1, got 0"),
    ({"hyperparams": {"hidden": 2.5}}, r"AgentTrainConfig.hyperparams\['hidden'\] must be an integer >= 1, got 2.5"),
])
def test_agent_train_config_keeps_zero_as_zero(kwargs, match):
    """A zero count is an error naming the field, never silently the default."""
    with pytest.raises(ValueError, match=match):
        AgentTrainConfig(**kwargs)
    assert AgentTrainConfig(num_envs=np.int64(8)).resolved()["num_envs"] == 8
