"""Ray RLlib (``ecomsim.integrations.rllib``): ids in remote env runners, the native vector env inside each.

Ray is an optional extra and absent from CI's main env: these tests skip there, with the reason.
Run them where it is installed (README "Ray RLlib"): ``python -m pytest -m slow tests/integrations``.
"""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason='Ray RLlib is an optional extra: pip install -e ".[rllib]" (README "Ray RLlib")')

from ecomsim.envs import EcomVectorEnv  # noqa: E402
from ecomsim.integrations.rllib import (  # noqa: E402
    SESSION_SUMS, make_env, ppo_config, register_rllib_envs, session_metrics_of)


def test_the_creator_builds_the_native_vector_env_or_a_single_env() -> None:
    vec = make_env("ecomsim/Slate-v0", {"num_envs": 3, "user_model": "reference"})
    assert isinstance(vec.unwrapped, EcomVectorEnv) and vec.num_envs == 3 and vec.unwrapped.config.slate_size == 5
    single = make_env("ecomsim/Recommend-v0", {"user_model": "reference"})
    assert single.unwrapped.config.mode == "recommend"
    assert register_rllib_envs() == ["ecomsim/Recommend-v0", "ecomsim/Slate-v0"]


def test_bad_options_fail_before_ray_starts() -> None:
    with pytest.raises(TypeError, match="user_modle"):
        ppo_config("ecomsim/Recommend-v0", {"user_modle": "dnn"})
    with pytest.raises(ValueError, match="num_envs_per_env_runner must be an integer >= 1"):
        ppo_config("ecomsim/Recommend-v0", num_envs_per_env_runner=0)


def test_session_metrics_of_a_result() -> None:
    sums = {"sessions": 4.0, "buyers": 1.0, "impressions": 40.0, "clicks": 8.0, "revenue": 30.0, "steps": 40.0}
    assert set(sums) == set(SESSION_SUMS)
    got = session_metrics_of({"env_runners": {"ecomsim": sums}})
    assert got == {"ctr": 0.2, "conversion_rate": 0.25, "revenue_per_session": 7.5, "session_length": 10.0}
    assert session_metrics_of({"env_runners": {}}) is None


@pytest.mark.slow
def test_one_ppo_iteration_with_two_remote_env_runners() -> None:
    """Two remote runners (fresh processes that never imported ecomsim) sample with the native vector env."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        config = ppo_config("ecomsim/Recommend-v0", {"user_model": "reference", "max_steps": 10}, num_env_runners=2,
                            num_envs_per_env_runner=8, train_batch_size=512, minibatch_size=128, num_epochs=1)
        algo = config.build_algo()
        kinds = algo.env_runner_group.foreach_env_runner(lambda r: type(r.env.unwrapped).__name__, local_env_runner=False)
        assert kinds == ["EcomVectorEnv", "EcomVectorEnv"]
        result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled"] >= 512
        metrics = session_metrics_of(result)
        assert metrics is not None and 0 < metrics["session_length"] <= 10 and 0 <= metrics["ctr"] <= 1
        assert np.isfinite(result["learners"]["default_policy"]["total_loss"])
        algo.stop()
    finally:
        ray.shutdown()
