"""The agent file format: weights + JSON card, checkpoints without pickle, and every way a file can be wrong."""

from __future__ import annotations

import base64
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from agents.evaluation import SB3Policy, evaluate, make_eval_env, spaces_of
from agents.checkpoint import load_checkpoint
from agents.model_files import CHECKPOINT, MODEL, STATE, load_agent
from agents.registry import policy_factory
from agents.train import AgentTrainConfig, load_model, train
from agents.vec_env import EcomSB3VecEnv

torch.set_num_threads(1)
threadpool_limits(1)


def _tiny(algo: str = "ppo", **kw) -> AgentTrainConfig:
    hp = {"n_steps": 16, "batch_size": 64} if algo == "ppo" else {"learning_starts": 100, "buffer_size": 2000, "batch_size": 64}
    base = dict(algo=algo, timesteps=256, num_envs=8, device="cpu", hyperparams=hp, checkpoint_every=128,
                eval_every=0, progress_bar=False, env_options={"user_model": "reference"})
    base.update(kw)
    return AgentTrainConfig(**base)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ppo")
    train(_tiny(), out)
    return out


def crafted_sb3_zip(path: Path, target: Path) -> Path:
    """An SB3-style zip whose ``data`` entry, once unpickled as SB3 does, writes ``target``."""

    class Payload:
        def __reduce__(self):
            return exec, (f"open({str(target)!r}, 'w').write('ran')",)

    import pickle

    blob = base64.b64encode(pickle.dumps(Payload())).decode()
    data = {"policy_class": {":type:": "<class 'type'>", ":serialized:": blob}}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("data", json.dumps(data))
        z.writestr("policy.pth", b"")
        z.writestr("_stable_baselines3_version", "2.9.2")
    return path


# ------------------------------------------------------------------ format
def test_saved_agent_predicts_like_the_trained_model(run_dir: Path) -> None:
    card = json.loads((run_dir / "model.json").read_text())
    assert card["format"] == "ecomsim-agent-v1" and card["algo"] == "ppo" and card["env_id"] == "ecomsim/Recommend-v0"
    assert card["action_space"] == {"type": "Discrete", "n": 20} and card["env_options"]["user_model"] == "reference"
    assert set(card["policy_kwargs"]) == {"context_dim", "num_candidates", "hidden"} and card["num_timesteps"] == 256
    with zipfile.ZipFile(run_dir / MODEL) as z:  # torch's format: tensors and plain containers only
        assert not any(n.endswith("/data") or n == "data" for n in z.namelist())
    agent = load_model(run_dir / MODEL, "ppo", device="cpu")
    model = load_model(run_dir / "model.json", device="cpu")  # the card path works too
    obs = EcomSB3VecEnv(8, user_model="reference").reset()
    np.testing.assert_array_equal(agent.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    env = make_eval_env({"user_model": "reference"}, num_envs=8)
    assert evaluate(SB3Policy(agent, "ppo"), env, 16, seed=1).num_sessions == 16


def test_crafted_sb3_zip_runs_no_code_by_default(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    evil = crafted_sb3_zip(tmp_path / "model.zip", target)
    with pytest.raises(ValueError, match=r"is a Stable-Baselines3 zip: loading it unpickles its 'data' entry, and a "
                                         r"crafted file runs code on load; refused. Load it with --trust-pickle"):
        load_model(evil, "ppo", device="cpu")
    with pytest.raises(ValueError, match="refused"):
        policy_factory(f"dqn:{evil}")
    assert not target.exists()
    # the file is a real threat: Stable-Baselines3's own loader, reached only through the opt-in, runs it
    with pytest.warns(UserWarning, match="trust_pickle=True"), pytest.raises(ValueError, match="not a loadable SB3 PPO"):
        load_model(evil, "ppo", device="cpu", trust_pickle=True)
    assert target.read_text() == "ran"


def test_a_trusted_sb3_zip_loads_with_a_warning(run_dir: Path, tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    agent = load_model(run_dir / MODEL, "ppo", device="cpu")
    env = EcomSB3VecEnv(8, user_model="reference")
    sb3 = PPO(type(agent.policy), env, policy_kwargs=agent.card["policy_kwargs"], n_steps=16, batch_size=64, device="cpu")
    sb3.policy.load_state_dict(agent.policy.state_dict())
    sb3.save(tmp_path / "sb3.zip")
    with pytest.raises(ValueError, match="refused"):
        load_model(tmp_path / "sb3.zip", "ppo", device="cpu")
    with pytest.warns(UserWarning, match="unpickles its 'data' entry.*trust_pickle=True"):
        trusted = load_model(tmp_path / "sb3.zip", "ppo", device="cpu", trust_pickle=True)
    obs = env.reset()
    np.testing.assert_array_equal(trusted.predict(obs, deterministic=True)[0], agent.predict(obs, deterministic=True)[0])


# ------------------------------------------------------------------- errors
def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(run_dir, out, ignore=shutil.ignore_patterns("tb"))
    return out


def test_bad_model_files_are_named(run_dir: Path, tmp_path: Path) -> None:
    out = copy_run(run_dir, tmp_path)
    with pytest.raises(IsADirectoryError, match=r"agent model '.*run' is a directory; expected a model file \(model.pt\); "
                                                r"it holds model.pt: pass '.*run/model.pt'"):
        load_model(out, "ppo")
    with pytest.raises(ValueError, match=r"holds a ppo agent, not dqn; load it as ppo:"):
        load_model(out / MODEL, "dqn")
    card = json.loads((out / "model.json").read_text())
    (out / "model.json").write_text(json.dumps({k: v for k, v in card.items() if k != "policy_kwargs"}))
    with pytest.raises(ValueError, match=r"agent card '.*model.json' lacks keys \['policy_kwargs'\]"):
        load_model(out / MODEL)
    (out / "model.json").write_text(json.dumps(dict(card, sha256="0" * 64)))
    with pytest.raises(ValueError, match=r"agent weights '.*model.pt' has sha256 [0-9a-f]{12}\.\.\., the card expects "
                                         r"000000000000\.\.\.: the file is corrupted"):
        load_model(out / MODEL)
    import hashlib

    data = (out / MODEL).read_bytes()[:5000]
    (out / MODEL).write_bytes(data)
    (out / "model.json").write_text(json.dumps(dict(card, sha256=hashlib.sha256(data).hexdigest())))
    with pytest.raises(ValueError, match=r"agent weights '.*model.pt' is not a readable torch weights file \(truncated"):
        load_model(out / MODEL)
    (out / "model.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"agent card '.*model.json' is not valid JSON"):
        load_model(out / MODEL)
    (out / "model.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"has no card '.*model.json' beside it"):
        load_model(out / MODEL)


def test_code_carrying_weights_are_refused_naming_the_file(run_dir: Path, tmp_path: Path) -> None:
    import hashlib
    import pickle

    target = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return exec, (f"open({str(target)!r}, 'w').write('ran')",)

    out = copy_run(run_dir, tmp_path)
    blob = pickle.dumps(Payload())
    (out / MODEL).write_bytes(blob)
    card = json.loads((out / "model.json").read_text())
    (out / "model.json").write_text(json.dumps(dict(card, sha256=hashlib.sha256(blob).hexdigest())))
    with pytest.raises(ValueError, match=r"agent weights '.*model.pt' holds objects other than tensors \(a pickle that "
                                         r"could run code when loaded\), refused without running it"):
        load_model(out / MODEL)
    assert not target.exists()


def test_an_agent_is_refused_on_another_env(run_dir: Path, tmp_path: Path) -> None:
    agent = load_model(run_dir / MODEL, "ppo")
    with pytest.raises(ValueError, match=r"is a ppo agent trained on ecomsim/Recommend-v0 \(Discrete\(20\) actions\), not "
                                         r"ecomsim/Slate-v0; score it with --env-id ecomsim/Recommend-v0"):
        agent.check_env("ecomsim/Slate-v0", *spaces_of({"mode": "slate", "slate_size": 5}))
    with pytest.raises(ValueError, match=r"was trained for action space Discrete\(20\), but this env \(the env\) has "
                                         r"MultiDiscrete\(\[20, 20, 20, 20, 20\]\)"):
        evaluate(SB3Policy(agent, "ppo"), make_eval_env({"mode": "slate", "slate_size": 5, "user_model": "reference"}, 4), 4)
    from ecomsim.catalog import REFERENCE_CATEGORIES, make_reference_catalog

    three = {k: REFERENCE_CATEGORIES[k] for k in ("books", "shoes", "home")}
    path = make_reference_catalog(200, categories=three).save(tmp_path / "three.npz")
    with pytest.raises(ValueError, match=r"was trained for observation space Box\(\d+,\) float32, but this env "
                                         r"\(ecomsim/Recommend-v0\) has Box\(\d+,\) float32; use the options it was trained"):
        agent.check_env("ecomsim/Recommend-v0", *spaces_of({"catalog": str(path), "user_model": "reference"}))


# --------------------------------------------------------------- checkpoints
def test_resume_checks_the_checkpoint(run_dir: Path, tmp_path: Path) -> None:
    out = copy_run(run_dir, tmp_path)
    with pytest.raises(ValueError, match=r"checkpoint '.*checkpoint.pt' holds a ppo run; resume it with --algo ppo \(got dqn\)"):
        train(_tiny("dqn", timesteps=512), out, resume=True)
    with pytest.raises(FileExistsError, match=r"already holds a run \(checkpoint.pt, model.pt\); continue it with --resume"):
        train(_tiny(), out)
    with pytest.raises(NotADirectoryError, match=r"is an existing file; expected a directory"):
        train(_tiny(), out / MODEL)
    (out / STATE).write_text('{"num_timesteps": 256, ')
    with pytest.raises(ValueError, match=r"run state '.*state.json' is not valid JSON"):
        train(_tiny(timesteps=512), out, resume=True)
    (out / STATE).write_text(json.dumps({"num_timesteps": "many"}))
    with pytest.raises(ValueError, match=r"run state '.*state.json': num_timesteps must be"):
        load_checkpoint(out, "ppo")
    (out / STATE).write_text(json.dumps({"num_timesteps": 128, "eval_history": [], "train_seconds": 1.0}))
    assert load_checkpoint(out, "ppo").run_state["num_timesteps"] == 256  # a stale state.json: the checkpoint's own copy
    (out / CHECKPOINT).write_bytes((out / CHECKPOINT).read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"checkpoint '.*checkpoint.pt' is not a readable torch weights file"):
        train(_tiny(timesteps=512), out, resume=True)


def test_resuming_one_checkpoint_twice_gives_the_same_run(run_dir: Path, tmp_path: Path) -> None:
    params = []
    for name in ("a", "b"):
        out = copy_run(run_dir, tmp_path / name)
        model, summary = train(_tiny(timesteps=512), out, resume=True)
        assert summary["timesteps"] == 512
        params.append([p.detach().clone() for p in model.policy.parameters()])
        assert load_agent(out / MODEL).card["num_timesteps"] == 512
    for a, b in zip(*params):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_dqn_checkpoint_round_trip(tmp_path: Path) -> None:
    model, _ = train(_tiny("dqn"), tmp_path)
    ckpt = load_checkpoint(tmp_path, "dqn")
    assert ckpt.counters["num_timesteps"] == 256 and ckpt.counters["n_calls"] == model._n_calls
    resumed, summary = train(_tiny("dqn", timesteps=384), tmp_path, resume=True)
    assert summary["timesteps"] == 384 and resumed._n_calls > model._n_calls


def test_too_many_envs_are_refused_before_any_allocation(tmp_path: Path) -> None:
    config = _tiny(num_envs=10**9, hyperparams={"n_steps": 16, "batch_size": 64})
    with pytest.raises(ValueError, match=r"num_envs=1,000,000,000 needs about [\d.]+ [GT]iB \(training env "
                                         r"\(1,000,000,000 sessions x [\d.]+ KB\).*PPO rollout.*of memory is available; "
                                         r"lower num_envs \(about [\d,]+ would fit\)"):
        train(config, tmp_path)
    assert not (tmp_path / CHECKPOINT).exists()
