"""Default hyperparameters, chosen by experiment on ``Recommend-v0`` (2 CPU cores, torch 1 thread).

Experiments (reference world, ``python /path/exp`` equivalents are in the README;
conversion over 4,000 seeded sessions, 95% CI):

PPO, candidate-scoring policy (``agents.policies``), 32 envs, n_steps 64, batch 512,
4 epochs, ent 0.01:

==========================  ===========  ========================
variant                     steps        conversion
==========================  ===========  ========================
gamma 0.95, lr 3e-4         100k         0.087 [0.078, 0.096]
gamma 0.95, lr 3e-4         500k         0.289 [0.275, 0.303]
gamma 0.95, lr 1e-3         500k         0.286 [0.272, 0.300]
==========================  ===========  ========================

For comparison: random 0.053, popularity 0.027, greedy (myopic oracle) 0.236.
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
