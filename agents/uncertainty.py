"""What the behaviour ensemble is for, measured: agents that exploit one learned model, and where the models disagree.

* **The sim-to-reference gap of a trained agent** (:func:`sim_reference_gap`): its conversion in
  the simulator it was trained in against its conversion in the reference world, on the same
  seeded sessions, with the 95% interval of the relative gap (``agents.agreement.relative_gap``).
  An agent trained against one learned model finds where that model is wrong in its favour;
  the ensemble options (``shopper_sampling="per_session"``, ``uncertainty_penalty``) are meant
  to take that away. The simulator of a penalised run is the same world without the penalty
  (the penalty changes rewards, never outcomes).
* **Disagreement by catalog** (:func:`catalog_disagreement`): the members' disagreement
  (``info["disagreement"]``, ``uncertainty_penalty=0``) per step under a uniformly random
  policy, on catalogs like the training logs' and on catalogs whose prices or categories the
  logs never showed. Its 95% interval treats each sub-env's mean over the run as one draw
  (steps of a session are not independent).

``scripts/uncertainty_experiment.py`` runs both and draws the figures of ``docs/trust.md``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from agents.agreement import relative_gap
from agents.evaluation import score

#: the arms of the gap experiment: env options on top of the id's (``{lam}`` and ``{member}`` filled in)
ARMS: dict[str, dict[str, Any]] = {
    "member": {"ensemble_member": "{member}"},
    "member_penalty": {"ensemble_member": "{member}", "uncertainty_penalty": "{lam}"},
    "per_session": {"shopper_sampling": "per_session"},
    "per_session_penalty": {"shopper_sampling": "per_session", "uncertainty_penalty": "{lam}"},
}
#: catalogs of the disagreement check: name -> env options (``in`` = like the logs, ``out`` = never in them)
CATALOGS: dict[str, tuple[str, dict[str, Any]]] = {
    "reference (the logs' catalog)": ("in", {"catalog": "reference"}),
    "default (GAN sample)": ("in", {"catalog": "default"}),
    "gan, training mix": ("in", {"catalog": "gan"}),
    "gan, electronics 600-3000": ("out", {"catalog": "gan", "category_mix": {"electronics": 1.0},
                                          "price_band": [600.0, 3000.0]}),
    "gan, books only": ("out", {"catalog": "gan", "category_mix": {"books": 1.0}}),
    "gan, grocery + beauty only": ("out", {"catalog": "gan", "category_mix": {"grocery": 1.0, "beauty": 1.0}}),
}


def arm_options(arm: str, lam: float, member: int = 0, ensemble: str = "default") -> dict[str, Any]:
    """The env options of ``arm`` (a key of :data:`ARMS`) with the penalty ``lam``, the fixed ``member`` and the
    ensemble file (``"default"``: the shipped one; else a path written by ``scripts/train_ensemble.py``)."""
    if arm not in ARMS:
        from ecomsim.errors import suggest

        raise ValueError(f"arm must be one of {list(ARMS)}, got {arm!r}.{suggest(arm, list(ARMS))}")
    fill = {"{lam}": float(lam), "{member}": int(member)}
    options = {k: fill.get(v, v) if isinstance(v, str) else v for k, v in ARMS[arm].items()}
    return options if ensemble == "default" else {**options, "ensemble": ensemble}


def sim_reference_gap(make_policy: Callable, options: dict[str, Any], sessions: int, seed: int,
                      num_envs: int = 256) -> dict[str, Any]:
    """Conversion of a policy in its training simulator (``options`` without the penalty) and in the reference world,
    same seeds; the relative gap ``sim / reference - 1`` with its 95% interval."""
    sim = {k: v for k, v in options.items() if k != "uncertainty_penalty"}
    rows = score(make_policy, sim, sessions, seed=seed, num_envs=num_envs)
    conv = {w: r.metrics["conversion_rate"].to_dict() for w, r in rows.items()}
    gap, ci = relative_gap(conv["sim"], conv["reference"])
    return {"sim": conv["sim"], "reference": conv["reference"], "relative_gap": gap, "relative_gap_ci95": ci,
            "sessions": sessions}


def catalog_disagreement(options: dict[str, Any], steps: int = 100, num_envs: int = 256, seed: int = 0) -> dict:
    """Mean per-step disagreement of the ensemble under a uniformly random policy in the env ``options`` make
    (``uncertainty_penalty=0`` added: reported, not charged), with the 95% interval over sub-envs."""
    from ecomsim.envs import EcomVectorEnv

    env = EcomVectorEnv(num_envs=num_envs, **{**options, "uncertainty_penalty": 0.0})
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    total, count = np.zeros(num_envs), np.zeros(num_envs)
    stepped = np.ones(num_envs, dtype=bool)  # sessions just restarted are skipped by the step: no disagreement
    for _ in range(steps):
        actions = rng.integers(0, env.core.num_candidates, size=env.action_space.shape)
        _, _, terminated, truncated, info = env.step(actions)
        total += np.where(stepped, info["disagreement"], 0.0)
        count += stepped
        stepped = ~(terminated | truncated)
    per_env = total / np.maximum(count, 1)
    mean, se = float(per_env.mean()), float(per_env.std(ddof=1) / np.sqrt(num_envs))
    return {"mean": mean, "low": mean - 1.96 * se, "high": mean + 1.96 * se, "steps": int(count.sum()),
            "catalog_seed": env.catalog_seed}
