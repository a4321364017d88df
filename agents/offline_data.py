"""Logged episodes: sessions of ``Recommend-v0`` run under a policy that states its propensities.

:func:`collect` runs a :class:`~agents.propensity.DistributionPolicy` (the logging
policy) on the native vector env for a fixed number of whole sessions and returns
:class:`LoggedEpisodes`: flat per-step arrays grouped by episode, what offline RL
(``agents.minari_io`` writes them as a Minari dataset) and off-policy evaluation
(``agents.ope``) read. Sessions are spread over the sub-envs with a fixed quota each,
as in ``agents.evaluation.evaluate``: keeping "the first N sessions to finish" would
over-sample short ones. Same seed, same arrays, bit for bit.

Step ``t`` of an episode is: the observation ``obs[t]`` the policy saw, the action it
drew, ``propensity[t]`` = its probability, ``logging_probs[t]`` the whole distribution,
then what ``env.step`` returned (``rewards``, ``terminated``, ``truncated``, ``infos``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.propensity import DistributionPolicy


@dataclass
class LoggedEpisodes:
    """``E`` logged sessions, ``S`` steps in all; episode ``e`` is steps ``starts[e]:starts[e + 1]``.

    Attributes:
        obs: ``(S, D)`` float32 observation at each decision.
        actions: ``(S,)`` int64 candidate shown.
        rewards: ``(S,)`` float64 reward of the step (the env's ``reward`` option).
        terminated, truncated: ``(S,)`` bool, as ``env.step`` returned them.
        propensity: ``(S,)`` logging probability of the action taken.
        logging_probs: ``(S, M)`` the logging policy's whole distribution.
        starts: ``(E + 1,)`` int64 episode offsets into the step arrays.
        final_obs: ``(E, D)`` float32 observation after each episode's last step.
        infos: step infos, key -> ``(S, ...)`` (``ecomsim.info.step_info`` keys).
        reset_infos: the info each episode started with, key -> ``(E, ...)``.
        target_probs: optional OPE targets' distributions at the logged states, name -> ``(S, M)``.
        oracle_purchase: optional ``(S, M)`` the simulator's own P(purchase | state, candidate): an oracle
            for reference rows only, never an estimator's input.
        meta: JSON-friendly description (env id and options, logging policy, seed, ``context_dim``:
            the observation's portrait and session features ``C`` in front of the ``M`` candidate blocks).
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    propensity: np.ndarray
    logging_probs: np.ndarray
    starts: np.ndarray
    final_obs: np.ndarray
    infos: dict[str, np.ndarray]
    reset_infos: dict[str, np.ndarray]
    target_probs: dict[str, np.ndarray] = field(default_factory=dict)
    oracle_purchase: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_steps(self) -> int:
        return int(self.actions.shape[0])

    @property
    def num_episodes(self) -> int:
        return int(self.starts.shape[0] - 1)

    @property
    def lengths(self) -> np.ndarray:
        """``(E,)`` steps per episode."""
        return np.diff(self.starts)

    @property
    def episode_of_step(self) -> np.ndarray:
        """``(S,)`` episode index of every step."""
        return np.repeat(np.arange(self.num_episodes), self.lengths)

    @property
    def step_in_episode(self) -> np.ndarray:
        """``(S,)`` time index ``t`` of every step within its episode."""
        return np.arange(self.num_steps) - np.repeat(self.starts[:-1], self.lengths)

    def returns(self) -> np.ndarray:
        """``(E,)`` undiscounted return of every episode."""
        return np.add.reduceat(self.rewards, self.starts[:-1]) if self.num_steps else np.zeros(0)

    def head(self, num_episodes: int) -> "LoggedEpisodes":
        """The first ``num_episodes`` episodes (i.i.d. sessions, so any prefix is a smaller log)."""
        if not 1 <= num_episodes <= self.num_episodes:
            raise ValueError(f"num_episodes must be in [1, {self.num_episodes}], got {num_episodes}")
        s = int(self.starts[num_episodes])

        def cut(d: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
            return {k: v[:n] for k, v in d.items()}

        return LoggedEpisodes(
            self.obs[:s], self.actions[:s], self.rewards[:s], self.terminated[:s], self.truncated[:s],
            self.propensity[:s], self.logging_probs[:s], self.starts[: num_episodes + 1], self.final_obs[:num_episodes],
            cut(self.infos, s), cut(self.reset_infos, num_episodes), cut(self.target_probs, s),
            None if self.oracle_purchase is None else self.oracle_purchase[:s], dict(self.meta, num_sessions=num_episodes),
        )


def collect(
    policy: DistributionPolicy,
    options: dict[str, Any],
    num_sessions: int,
    seed: int = 0,
    num_envs: int = 256,
    targets: dict[str, DistributionPolicy] | None = None,
    oracle: bool = False,
    env_id: str = "ecomsim/Recommend-v0",
) -> LoggedEpisodes:
    """Log ``num_sessions`` whole sessions of the env under ``policy``.

    Args:
        policy: the logging policy; its generator is ``np.random.default_rng(seed)``.
        options: ``EnvConfig`` keyword arguments (e.g. ``ecomsim.registration.env_kwargs(env_id)``);
            ``mode`` must be ``recommend``.
        num_sessions: whole sessions to log.
        seed: seeds the env (sub-env ``i`` gets ``seed + i``) and the policy's generator.
        num_envs: sessions stepped together (at most ``num_sessions``).
        targets: policies whose distributions are recorded at every logged state (for OPE);
            only their ``probs`` is called, so they draw nothing.
        oracle: also record the simulator's P(purchase | state, candidate) (``oracle_purchase``).
        env_id: recorded in ``meta`` (the id ``options`` came from).
    """
    from ecomsim.envs import EcomVectorEnv

    if isinstance(num_sessions, bool) or not isinstance(num_sessions, (int, np.integer)) or num_sessions < 1:
        raise ValueError(f"num_sessions must be a positive integer, got {num_sessions!r}")
    if options.get("mode", "recommend") != "recommend":
        raise ValueError(f"logged episodes need mode='recommend' (one item per step), got mode={options.get('mode')!r}")
    num_sessions = int(num_sessions)
    n = min(num_envs, num_sessions)
    env = EcomVectorEnv(num_envs=n, **options)
    targets = targets or {}
    quota = np.full(n, num_sessions // n, dtype=np.int64)
    quota[: num_sessions % n] += 1
    ep = np.zeros(n, dtype=np.int64)  # index of each row's current episode
    rows = np.arange(n)
    obs, info = env.reset(seed=seed)
    policy.reset(env.core, np.random.default_rng(seed))
    for tgt in targets.values():
        tgt.reset(env.core, np.random.default_rng(seed))  # probs only: never drawn from
    rec: dict[str, list[np.ndarray]] = {}
    width = int(quota.max() + 1)  # episode key = row * width + episode index
    starts_rec: dict[str, list] = {"key": [rows * width], "info": [info]}
    final_keys, final_obs = [], []
    autoreset = np.zeros(n, dtype=bool)
    steps, limit = 0, 10 * (num_sessions // n + 1) * env.config.max_steps
    while (ep < quota).any():
        actions, p = policy.act_with_probs(obs)
        extra = {f"target/{k}": t.probs(obs) for k, t in targets.items()}
        if oracle:
            extra["oracle"] = env.core.candidate_reaction().purchase_total
        next_obs, reward, term, trunc, info = env.step(actions)
        live = ~autoreset & (ep < quota)
        keys = rows * width + ep
        if autoreset.any():  # the rows that restarted: this step's info is their new episode's first info
            fresh = autoreset & (ep < quota)
            starts_rec["key"].append(keys[fresh])
            starts_rec["info"].append({k: v[fresh] for k, v in info.items()})
        for name, arr in (("key", keys), ("obs", obs), ("actions", actions), ("propensity", p[rows, actions]),
                          ("logging_probs", p), ("rewards", reward), ("terminated", term), ("truncated", trunc),
                          *extra.items(), *(("info/" + k, v) for k, v in info.items())):
            rec.setdefault(name, []).append(np.asarray(arr)[live])
        done = (term | trunc) & live
        final_keys.append(keys[done])
        final_obs.append(next_obs[done])
        ep += done
        autoreset = term | trunc
        obs = next_obs
        steps += 1
        if steps > limit:
            raise RuntimeError(f"logging did not finish {num_sessions} sessions in {limit} vector steps")
    cat = {k: np.concatenate(v) for k, v in rec.items()}
    step_key = cat.pop("key")
    order = np.argsort(step_key, kind="stable")  # episodes in (row, episode) order, steps in time order
    cat = {k: v[order] for k, v in cat.items()}
    ep_keys, lengths = np.unique(step_key, return_counts=True)
    fk = np.concatenate(final_keys)
    fo = np.concatenate(final_obs)[np.argsort(fk, kind="stable")]
    assert np.array_equal(np.sort(fk), ep_keys), "every logged episode ends exactly once"
    sk = np.concatenate(starts_rec["key"])
    sk_order = np.argsort(sk, kind="stable")
    keep = np.isin(sk[sk_order], ep_keys)  # a row restarted past its quota opens no logged episode
    reset_infos = {k: np.concatenate([d[k] for d in starts_rec["info"]])[sk_order][keep] for k in info}
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    out = LoggedEpisodes(
        obs=cat["obs"].astype(np.float32), actions=cat["actions"].astype(np.int64), rewards=cat["rewards"].astype(np.float64),
        terminated=cat["terminated"].astype(bool), truncated=cat["truncated"].astype(bool),
        propensity=cat["propensity"], logging_probs=cat["logging_probs"], starts=starts, final_obs=fo.astype(np.float32),
        infos={k[5:]: v for k, v in cat.items() if k.startswith("info/")}, reset_infos=reset_infos,
        target_probs={k[7:]: v for k, v in cat.items() if k.startswith("target/")},
        oracle_purchase=cat.get("oracle"),
        meta={"env_id": env_id, "env_options": dict(options), "num_sessions": num_sessions, "seed": int(seed),
              "num_envs": n, "context_dim": env.core.layout.context_dim,
              "logging_policy": getattr(policy, "describe", lambda: {"name": policy.name})()},
    )
    assert out.num_episodes == num_sessions and (out.terminated | out.truncated)[starts[1:] - 1].all()
    return out
