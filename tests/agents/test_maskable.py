"""sb3-contrib's MaskablePPO on a session id with inventory: trained through ``agents.train``, it never shows a
candidate that is out of stock, while the unmasked policy does; saved and loaded, it keeps its masks."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sb3_contrib", reason='MaskablePPO needs sb3-contrib: pip install -e ".[masks]"')

from agents.evaluation import SB3Policy  # noqa: E402
from agents.train import AgentTrainConfig, load_model, train  # noqa: E402
from ecomsim.envs import EcomVectorEnv  # noqa: E402

#: a store whose shelves empty fast: 1 day of stock, no reorders within the test, many sessions a day
SCARCE = {"sessions_per_day": 40, "initial_fill_days": 0.5, "min_fill_units": 0, "review_days": 3650}


def _oos_shown(policy: SB3Policy, steps: int = 60) -> tuple[int, int]:
    """(impressions of out-of-stock items, impressions) over ``steps`` steps of 64 sessions in a scarce store."""
    env = EcomVectorEnv(num_envs=64, user_model="reference", inventory=SCARCE)
    obs, _ = env.reset(seed=3)
    policy.reset(env.core, np.random.default_rng(0))
    oos = shown = 0
    for _ in range(steps):
        obs, _, _, _, info = env.step(policy.act(obs))
        oos += int(info["unavailable"].sum())
        shown += int((info["items"] >= 0).sum())
    return oos, shown


@pytest.mark.slow
def test_masked_agent_never_shows_an_empty_shelf(tmp_path) -> None:
    options = {"user_model": "reference", "inventory": SCARCE}
    config = AgentTrainConfig(algo="maskable_ppo", env_options=options, timesteps=512, num_envs=16, eval_every=0,
                              checkpoint_every=10_000, progress_bar=False, hyperparams={"n_steps": 32, "batch_size": 64},
                              device="cpu")
    model, _ = train(config, tmp_path / "masked")
    assert type(model).__name__ == "MaskablePPO"
    loaded = load_model(tmp_path / "masked" / "model.pt")
    oos, shown = _oos_shown(SB3Policy(loaded, "maskable_ppo"))
    assert shown > 0 and oos == 0, f"{oos} of {shown} impressions were out of stock"
    plain = AgentTrainConfig(algo="ppo", env_options=options, timesteps=512, num_envs=16, eval_every=0,
                             checkpoint_every=10_000, progress_bar=False, hyperparams={"n_steps": 32, "batch_size": 64},
                             device="cpu")
    unmasked, _ = train(plain, tmp_path / "plain")
    oos, shown = _oos_shown(SB3Policy(unmasked, "ppo"))
    assert oos > 0  # the scarce store does empty shelves: without masks some get shown


def test_maskable_ppo_needs_inventory() -> None:
    with pytest.raises(ValueError, match="algo='maskable_ppo' masks the candidates out of stock"):
        AgentTrainConfig(algo="maskable_ppo", env_options={"user_model": "reference"})
