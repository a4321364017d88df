"""Default hyperparameters, chosen by experiment on ``Recommend-v0`` (2 shared CPU cores, 1 torch thread).

Runs of ``scripts/train_agent.py`` (seed 0, ``--hyperparams`` for the variants) in the
reference world (``user_model="reference"``, reference catalog), scored by conversion
over 4,000 seeded sessions with 95% CIs. For comparison, 20,000 sessions: random 0.053,
popularity 0.027, greedy (the myopic purchase oracle) 0.236.

=====================================================  =====  ======================
variant (PPO: 32 envs, n_steps 64, batch 512, 4 epochs)  steps  conversion
=====================================================  =====  ======================
SB3 ``MlpPolicy``, gamma 0.95, lr 3e-4 constant        500k   0.058 [0.051, 0.066]
candidate policy, gamma 0.95, lr 3e-4 constant         100k   0.087 [0.078, 0.096]
candidate policy, gamma 0.95, lr 3e-4 constant         500k   0.289 [0.275, 0.303]
candidate policy, gamma 0.95, lr 1e-3 constant         500k   0.286 [0.272, 0.300]
candidate policy, gamma 0.99, lr 3e-4 constant         500k   0.260 [0.247, 0.274]
candidate policy, gamma 0.95, lr 3e-4 constant         1M     0.263 [0.249, 0.276]
=====================================================  =====  ======================

* The candidate-scoring policy (``agents.policies``) is what makes PPO learn here:
  the flat MLP barely beats random after 500k steps, the shared per-candidate
  scorer beats greedy.
* gamma 0.95 (a horizon of ~20 steps, about a session) beats 0.99 (noisier returns).
* The constant learning rate drifts down after 500k steps (0.289 -> 0.263), so the
  default falls linearly to 0 over the run. 1M steps: the whole default run
  (training 244 s at ~4,100 steps/s, one torch thread, plus scoring five policies
  on 5,000 sessions in two worlds) took 4 min 24 s on the 2-core machine, lightly
  loaded; the periodic evaluation plateaus at 0.27-0.28 from 625k steps on.

The defaults moved to the DNN shoppers and GAN catalog during these experiments:
the linear-decay PPO run (the default, 1M steps) was trained on the DNN shoppers
with the reference catalog and scored 0.249 [0.236, 0.262] there and 0.262
[0.249, 0.276] in the reference world.

Final default runs (DNN shoppers, GAN catalog; ``python scripts/train_agent.py`` and
``python scripts/train_agent.py --algo dqn``), 20,000 sessions per policy and world
(``scripts/evaluate.py ... --sessions 20000 --seed 1000000``): see the README.

DQN (candidate Q-network, 32 envs, batch 256, buffer 100k, target update 2k, 30%
exploration), 300k steps: 4 gradient steps per vector step 0.170 [0.158, 0.181]
(reference world) at 229 steps/s (shared CPU); 1 gradient step 0.232 [0.219, 0.246]
(DNN shoppers, GAN catalog) at 718 steps/s and several times cheaper: the default.
"""

from __future__ import annotations

from typing import Any

PPO_DEFAULTS: dict[str, Any] = {
    "timesteps": 1_000_000,
    "num_envs": 32,
    "hidden": 64,
    "algo_kwargs": {
        "n_steps": 64,
        "batch_size": 512,
        "n_epochs": 4,
        "learning_rate": 3e-4,
        "lr_schedule": "linear",
        "gamma": 0.95,
        "gae_lambda": 0.95,
        "ent_coef": 0.01,
        "clip_range": 0.2,
        "vf_coef": 0.5,
        "max_grad_norm": 0.5,
    },
}

DQN_DEFAULTS: dict[str, Any] = {
    "timesteps": 300_000,
    "num_envs": 32,
    "hidden": 64,
    "algo_kwargs": {
        "learning_rate": 3e-4,
        "gamma": 0.95,
        "buffer_size": 100_000,
        "learning_starts": 5_000,
        "batch_size": 256,
        "train_freq": 1,
        "gradient_steps": 1,
        "target_update_interval": 2_000,
        "exploration_fraction": 0.3,
        "exploration_final_eps": 0.02,
    },
}

# ``ecomsim/Inventory-v0`` (PPO with ``agents.policies.StoreActorCriticPolicy``): four stores side by side, one
# 180-day episode per store per rollout; a day is 200 shopper sessions, so a step costs what ~200 session
# episodes do and the budget is in days, not millions of steps (docs/inventory.md has a run at these defaults).
# gamma 0.97: an order pays off over its lead time and the weeks its units sell (a horizon of ~33 days).
STORE_PPO_DEFAULTS: dict[str, Any] = {
    "timesteps": 21_600,
    "num_envs": 4,
    "hidden": 64,
    "algo_kwargs": {
        "n_steps": 180,
        "batch_size": 120,
        "n_epochs": 10,
        "learning_rate": 3e-4,
        "lr_schedule": "constant",
        "gamma": 0.97,
        "gae_lambda": 0.95,
        "ent_coef": 0.01,
        "clip_range": 0.2,
        "vf_coef": 0.5,
        "max_grad_norm": 0.5,
    },
}


# ``ecomsim/Retention-v0`` (PPO with ``agents.policies.StoreActorCriticPolicy``, an MLP over the customer's
# state): 32 customers side by side in the native SB3 VecEnv (``agents.retention_vec_env``: one batched session
# per step for all who come back, so many customers cost little more than a few); an episode is ~10
# decisions (one per visit), so a rollout of 256 steps per env covers ~800 customers. gamma 0.99: a coupon or a
# message pays off over the next visits. Reference world, 5,000 held-out customers, paired against the myopic
# policy: n_steps 256 / batch 128, 300k steps: +11.9 [+4.6, +19.0] per customer; n_steps 64 / batch 256, 1M
# steps: -15.7 [-21.4, -10.0] (docs/lifecycle.md has both runs).
RETENTION_PPO_DEFAULTS: dict[str, Any] = {
    "timesteps": 300_000,
    "num_envs": 32,
    "hidden": 64,
    "algo_kwargs": {
        "n_steps": 256,
        "batch_size": 128,
        "n_epochs": 10,
        "learning_rate": 3e-4,
        "lr_schedule": "constant",
        "gamma": 0.99,
        "gae_lambda": 0.95,
        "ent_coef": 0.01,
        "clip_range": 0.2,
        "vf_coef": 0.5,
        "max_grad_norm": 0.5,
    },
}

# DQN on ``ecomsim/Retention-v0`` (``agents.policies.StateDQNPolicy``): the Recommend-v0 DQN settings with the
# retention PPO's horizon (gamma 0.99) and its 32 customers side by side.
RETENTION_DQN_DEFAULTS: dict[str, Any] = {
    "timesteps": 300_000,
    "num_envs": 32,
    "hidden": 64,
    "algo_kwargs": {**DQN_DEFAULTS["algo_kwargs"], "gamma": 0.99},
}
