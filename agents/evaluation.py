"""One evaluation harness: run a policy for N seeded sessions and score it by conversion.

Sessions are spread over ``num_envs`` sub-envs with a fixed quota each, and only the
first ``quota`` sessions of every sub-env count: stopping at "the first N sessions to
finish" would over-sample short sessions and bias every metric.

:func:`score` evaluates in the env's own simulator and, side by side, in the
reference world (``user_model="reference"``): the sim-to-real gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from agents.baselines import Policy
from ecomsim.envs import EcomVectorEnv
from ecomsim.metrics import Estimate, SessionRecorder


@dataclass
class EvalResult:
    policy: str
    num_sessions: int
    metrics: dict[str, Estimate]
    funnel: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "num_sessions": self.num_sessions,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "funnel": self.funnel,
        }


class SB3Policy(Policy):
    """An SB3 model (PPO / DQN) or a loaded agent (``agents.model_files.SavedAgent``) as a
    :class:`Policy`: deterministic ``model.predict``. :meth:`reset` refuses an env whose
    action or observation space is not the one the model was trained for."""

    def __init__(self, model, name: str = "sb3", deterministic: bool = True) -> None:
        self.model, self.name, self.deterministic = model, name, deterministic
        # a MaskablePPO (or a loaded maskable agent) picks among the candidates in stock: it gets the env's masks
        self.maskable = type(model).__name__ == "MaskablePPO" or getattr(model, "algo", None) == "maskable_ppo"

    def reset(self, core, rng: np.random.Generator) -> None:
        from agents.model_files import check_fits, describe_space
        from ecomsim.assembly import env_spaces

        super().reset(core, rng)
        card = getattr(self.model, "card", None) or {
            "algo": self.name, "env_id": None, "observation_space": describe_space(self.model.observation_space),
            "action_space": describe_space(self.model.action_space)}
        check_fits(card, str(getattr(self.model, "path", self.name)), None, *env_spaces(core))

    def act(self, obs: np.ndarray) -> np.ndarray:
        if self.maskable:
            actions, _ = self.model.predict(obs, deterministic=self.deterministic, action_masks=self.core.action_masks())
        else:
            actions, _ = self.model.predict(obs, deterministic=self.deterministic)
        return actions


def evaluate(
    policy,
    env: EcomVectorEnv,
    num_sessions: int,
    seed: int = 0,
    act: Callable[[np.ndarray], np.ndarray] | None = None,
    max_steps: int | None = None,
) -> EvalResult:
    """Score ``policy`` (a ``agents.baselines.Policy``) on ``num_sessions`` sessions of ``env``.

    Args:
        policy: a baseline policy, or anything with a ``name`` when ``act`` is given.
            A policy's ``observe`` gets every step's feedback (online learners learn
            during the evaluation, as they would in production).
        env: the vector env (its sub-envs share the work).
        num_sessions: sessions to score; each sub-env runs ``ceil(num_sessions / num_envs)``
            and the surplus is dropped from the last sub-envs' quotas.
        seed: seeds the env (sub-env ``i`` gets ``seed + i``) and the policy's generator.
        act: optional function obs -> actions, used instead of ``policy.act``.
        max_steps: safety limit on vector steps (default: ten times the expected need).
    """
    if isinstance(num_sessions, bool) or not isinstance(num_sessions, (int, np.integer)) or num_sessions < 1:
        raise ValueError(f"num_sessions must be a positive integer, got {num_sessions!r}")
    num_sessions = int(num_sessions)
    n = env.num_envs
    quota = np.full(n, num_sessions // n, dtype=np.int64)
    quota[: num_sessions % n] += 1
    done_count = np.zeros(n, dtype=np.int64)
    recorder = SessionRecorder()
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    learns = act is None and isinstance(policy, Policy)
    if act is None:
        policy.reset(env.core, rng)
        act = policy.act
    steps = 0
    limit = max_steps or 10 * (num_sessions // n + 1) * env.config.max_steps
    stocked = env.config.inventory is not None
    shown_out = np.zeros(n)  # inventory: impressions of items with no unit on hand, this session so far
    counted_out = 0.0  # ... summed over the counted sessions
    sold_cover = []  # inventory: days of cover (at the day's opening) of every unit the sessions bought
    while (done_count < quota).any():
        actions = act(obs)
        obs, reward, terminated, truncated, info = env.step(actions)
        if learns:
            policy.observe(actions, reward, info)
        done = terminated | truncated
        counted = done & (done_count < quota)
        recorder.record(info, counted)
        if stocked:
            shown_out += np.asarray(info["unavailable"]).sum(axis=1)
            counted_out += float(shown_out[counted].sum())
            shown_out[done] = 0.0
            # the cover of the day the step sold in (a day opens before a step, never after it)
            sold_cover.append(env.core.stock.cover[np.asarray(info["items"])[np.asarray(info["purchased"], dtype=bool)]])
        done_count += done
        steps += 1
        if steps > limit:
            raise RuntimeError(f"evaluation did not finish {num_sessions} sessions in {limit} steps")
    name = getattr(policy, "name", str(policy))
    funnel = recorder.funnel()
    if stocked:  # how often the policy showed an item the shopper could not buy, and the store's books
        funnel["out_of_stock_shown"] = counted_out / max(float(recorder.arrays()["impressions"].sum()), 1.0)
        funnel.update(store_books(env.core.stock.accounts))
        sold = np.concatenate(sold_cover)
        funnel["store_cover_days_sold"] = float(sold.mean()) if sold.size else float("nan")
    return EvalResult(name, recorder.num_sessions, recorder.metrics(), funnel)


STORE_BOOKS = ("profit", "revenue", "holding", "stockout_cost", "ordering")


def store_books(accounts) -> dict[str, float]:
    """The scoring store's closed days (``SessionEnvStore.accounts``) per store-day.

    ``store_days``; ``store_<x>_per_day`` for the profit, revenue and costs of
    :data:`STORE_BOOKS` (``DayAccount`` fields summed over groups); ``store_sold_per_day``
    and ``store_lost_per_day`` in units; ``store_items_out``, the mean number of items with
    no unit on hand at a day's close (the assortment the store could not sell). A day is a
    fixed amount of shopper time (the store's clock), so policies are compared per day, not
    per session. No closed day (a run shorter than one store-day): only ``store_days = 0``.
    (:func:`evaluate` adds ``store_cover_days_sold``: the mean days of cover, at the day's
    opening and capped at 365, of the units its sessions bought; a policy that sells down
    overstock sells high-cover units.)
    """
    out: dict[str, float] = {"store_days": float(len(accounts))}
    if accounts:
        for name in STORE_BOOKS + ("sold", "lost"):
            out[f"store_{name}_per_day"] = float(np.mean([getattr(a, name).sum() for a in accounts]))
        out["store_items_out"] = float(np.mean([a.items_out.sum() for a in accounts]))
    return out


def spaces_of(options: dict[str, Any]):
    """``(action_space, observation_space)`` of the env ``options`` make (a one-session core: no vector env built)."""
    from ecomsim.config import EnvConfig
    from ecomsim.assembly import build_core, env_spaces

    return env_spaces(build_core(EnvConfig.from_kwargs(options), 1))


def make_eval_env(options: dict[str, Any], num_envs: int = 256) -> EcomVectorEnv:
    """A vector env for scoring (``options`` are ``EnvConfig`` fields, e.g. from :func:`ecomsim.registration.env_kwargs`)."""
    return EcomVectorEnv(num_envs=num_envs, **options)


def score(
    make_policy: Callable[[], Policy],
    options: dict[str, Any],
    num_sessions: int,
    seed: int = 0,
    num_envs: int = 256,
    worlds: tuple[str, ...] = ("sim", "reference"),
) -> dict[str, EvalResult]:
    """Evaluate a fresh policy in the env's simulator (``"sim"``) and in the reference world.

    ``make_policy`` is called once per world, so an online learner starts from scratch
    in each. When the env's own shopper model already is the reference world, the
    ``"reference"`` entry is the same run (reported once, shared).
    """
    from ecomsim.config import EnvConfig, reference_options

    own_model = EnvConfig.from_kwargs(options).user_model
    out: dict[str, EvalResult] = {}
    for world in worlds:
        if world not in ("sim", "reference"):
            raise ValueError(f"worlds must be drawn from ['sim', 'reference'], got {world!r}")
        kwargs = dict(options)
        if world == "reference":
            if own_model == "reference" and "sim" in out:
                out[world] = out["sim"]
                continue
            kwargs = reference_options(kwargs)  # the learned shoppers' own options (ensemble) do not apply
        env = make_eval_env(kwargs, min(num_envs, num_sessions))
        out[world] = evaluate(make_policy(), env, num_sessions, seed=seed)
    return out
