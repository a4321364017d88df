"""Logs of the reference world under a randomised logging policy, in the tidy schema.

**The logging policy** (:class:`LoggingPolicy`) must visit the states the
evaluated policies visit, or the learned simulator is only right off their path:
each session follows one behaviour drawn from a mix (random, popularity,
click-greedy, purchase-greedy), softened by a softmax over log scores and an
epsilon of uniform exploration; slates are drawn Plackett-Luce, so every row's
propensity is exact.

:func:`log_reference_world` returns both views of the same impressions: the tidy
frame (``ecomsim.data.schema``) and the step arrays the behaviour model trains on,
with the reference world's own probabilities beside them (the Bayes-optimal
yardstick).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from ecomsim.catalog import Catalog, load_catalog
from ecomsim.config import CHANNELS, EnvConfig
from ecomsim.data.schema import StepData, split_sessions_by_time, validate_logs
from ecomsim.shoppers.behavior import SessionTracker
from ecomsim.shoppers.reference import ReferenceWorld
from ecomsim.sim.core import SimulationCore
from ecomsim.sim.streams import key_from_generator

LOG_START = pd.Timestamp("2026-01-01", tz="UTC")
LOG_DAYS = 30  # sessions arrive evenly over this many days, whatever their number
STEP_SECONDS = 20.0  # time between two steps of a session
BEHAVIOURS = ("random", "popularity", "click_greedy", "greedy")


@dataclass(frozen=True)
class LoggingPolicy:
    """The randomised logging policy (see module docstring).

    Attributes:
        mix: probability of each session behaviour: ``random``, ``popularity``,
            ``click_greedy`` (reference P(click)), ``greedy`` (reference P(purchase)).
        temperature: softmax temperature on the log scores (smaller: closer to argmax).
        epsilon: share of uniform exploration mixed into every draw.
    """

    mix: tuple[tuple[str, float], ...] = (("random", 0.25), ("popularity", 0.25), ("click_greedy", 0.2), ("greedy", 0.3))
    temperature: float = 0.25
    epsilon: float = 0.1

    def __post_init__(self) -> None:
        for kind, share in self.mix:
            if kind not in BEHAVIOURS:
                raise ValueError(f"LoggingPolicy.mix behaviour must be one of {list(BEHAVIOURS)}, got {kind!r}")
            if share < 0:
                raise ValueError(f"LoggingPolicy.mix share of {kind!r} must be >= 0, got {share}")
        if not 0 < self.temperature <= 100:
            raise ValueError(f"LoggingPolicy.temperature must be in (0, 100], got {self.temperature}")
        if not 0 < self.epsilon <= 1:
            raise ValueError(f"LoggingPolicy.epsilon must be in (0, 1], got {self.epsilon}")

    def draw_behaviours(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``(n,)`` indexes into :attr:`mix`, one behaviour per new session."""
        shares = np.array([s for _, s in self.mix], dtype=np.float64)
        return rng.choice(len(self.mix), size=n, p=shares / shares.sum())

    def slate_probabilities(self, core: SimulationCore, behaviour: np.ndarray) -> np.ndarray:
        """``(N, M)`` probability of each candidate for the top slot, per session's behaviour."""
        names = np.array([k for k, _ in self.mix])[behaviour]
        scores = np.zeros((core.num_envs, core.num_candidates))
        if np.isin(names, ["click_greedy", "greedy"]).any():
            r = core.candidate_reaction()
            scores = np.where((names == "click_greedy")[:, None], np.log(r.click + 1e-12), scores)
            scores = np.where((names == "greedy")[:, None], np.log(r.purchase_total + 1e-12), scores)
        scores = np.where((names == "popularity")[:, None], np.log(core.catalog.popularity)[core.candidates], scores)
        return (1 - self.epsilon) * _softmax_rows(scores / self.temperature) + self.epsilon / core.num_candidates


def _softmax_rows(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


def draw_slates(probs: np.ndarray, slate_size: int, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Plackett-Luce slates: ``slate_size`` candidates drawn without replacement.

    Args:
        probs: ``(N, M)`` probability of each candidate for the top slot.
        slate_size: ``k``, slots per slate.
        u: ``(N, k)`` uniform draws, one per slot.

    Returns:
        ``(slots, propensity)``, both ``(N, k)``: the candidate in each slot and its
        probability given the slots above it.
    """
    n, m = probs.shape
    rows = np.arange(n)
    slots = np.empty((n, slate_size), dtype=np.int64)
    prop = np.empty((n, slate_size))
    avail = probs.copy()
    for j in range(slate_size):
        p = avail / avail.sum(axis=1, keepdims=True)
        pick = np.minimum((np.cumsum(p, axis=1) < u[:, j : j + 1]).sum(axis=1), m - 1)
        pick = np.where(p[rows, pick] > 0, pick, np.argmax(p, axis=1))
        slots[:, j] = pick
        prop[:, j] = p[rows, pick]
        avail[rows, pick] = 0.0
    return slots, prop


class _TrackedReferenceWorld(ReferenceWorld):
    """The reference world, telling a :class:`SessionTracker` what the DNN's tracker would see.

    ``tracker`` is set once the core exists (the tracker reads the core it is built on).
    """

    tracker: SessionTracker

    def reset_sessions(self, idx: np.ndarray) -> None:
        super().reset_sessions(idx)
        self.tracker.reset(idx)

    def update(self, items, shown, clicked, carted, purchased) -> None:
        self.tracker.update(items, shown, clicked)  # before the reference world's latent update: same order as the DNN
        super().update(items, shown, clicked, carted, purchased)


class _LoggingRun:
    """``num_sessions`` reference-world sessions under a logging policy, ``batch`` at a time.

    Every impression is recorded as arrays (:meth:`step`); a finished session's row is
    restarted with a fresh session until ``num_sessions`` have started.
    """

    def __init__(self, cfg: EnvConfig, catalog: Catalog, policy: LoggingPolicy, rng: np.random.Generator,
                 slate_size: int, num_sessions: int, batch: int, first_session: int) -> None:
        self.policy, self.rng, self.num_sessions, self.first_session = policy, rng, num_sessions, first_session
        self.shopper = _TrackedReferenceWorld()
        self.core = SimulationCore(cfg, catalog, self.shopper, batch)
        self.shopper.tracker = SessionTracker(self.core.state)
        rows = np.arange(batch)
        self.session_id = rows + first_session
        self.active = np.ones(batch, dtype=bool)
        self.behaviour = policy.draw_behaviours(rng, batch)
        self.core.reset(rows, key_from_generator(rng, batch))
        self.next_session = batch
        self.positions = np.arange(slate_size, dtype=np.float64)
        self.records: dict[str, list[np.ndarray]] = {}

    def run(self) -> dict[str, np.ndarray]:
        """Step until every session ended; the recorded arrays, one row per logged step."""
        while self.active.any():
            self.step()
        return {name: np.concatenate(parts) for name, parts in self.records.items()}

    def step(self) -> None:
        core, tracker = self.core, self.shopper.tracker
        k = len(self.positions)
        probs = self.policy.slate_probabilities(core, self.behaviour)
        slots, prop = draw_slates(probs, k, self.rng.random((core.num_envs, k)))
        items = core.candidates[np.arange(core.num_envs)[:, None], slots]
        user_f, item_f = tracker.user_features(), tracker.item_features(items)
        steps, channel = core.step_count.copy(), core.portraits.channel.copy()
        ref = self.shopper.reaction(items, self.positions)
        out = core.step(slots, observe=False)  # logs keep no observations
        level = np.where(out.purchased.any(axis=1), 2, np.where(out.clicked.any(axis=1), 1, 0))
        for name, arr in (("session", self.session_id), ("step", steps), ("user", user_f), ("items", item_f),
                          ("item_ids", items), ("channel", channel), ("click", out.clicked), ("cart", out.carted),
                          ("purchase", out.purchased), ("left", out.left), ("level", level), ("ref_click", ref.click),
                          ("ref_cart", ref.cart), ("ref_purchase", ref.purchase), ("ref_leave", ref.leave),
                          ("propensity", prop), ("behaviour", self.behaviour)):
            self.records.setdefault(name, []).append(arr[self.active])
        self._restart(np.flatnonzero(out.terminated | out.truncated))

    def _restart(self, done: np.ndarray) -> None:
        """Start fresh sessions in the finished rows ``done`` while any are left to log; retire the rest."""
        if not len(done):
            return
        fresh = done[: max(0, min(len(done), self.num_sessions - self.next_session))]
        self.active[np.setdiff1d(done, fresh)] = False
        self.session_id[fresh] = np.arange(self.next_session, self.next_session + len(fresh)) + self.first_session
        self.next_session += len(fresh)
        self.behaviour[fresh] = self.policy.draw_behaviours(self.rng, len(fresh))
        self.core.reset(done)


def _log_frame(rec: dict[str, np.ndarray], catalog: Catalog, slate_size: int, num_sessions: int,
               first_session: int) -> pd.DataFrame:
    """The tidy frame of the recorded steps: one row per impression, slots of a step in order."""
    k = slate_size
    s = rec["session"].shape[0]
    arrival = (rec["session"] - first_session) * (LOG_DAYS * 86400.0 / num_sessions)  # seconds after LOG_START
    return pd.DataFrame({
        "session": np.repeat(rec["session"], k).astype(np.int64),
        "user": np.repeat(rec["session"], k).astype(np.int64),  # one session per simulated shopper
        "timestamp": LOG_START + pd.to_timedelta(np.repeat(arrival + rec["step"] * STEP_SECONDS, k), unit="s"),
        "channel": np.asarray(CHANNELS, dtype=object)[np.repeat(rec["channel"], k)],
        "step": np.repeat(rec["step"], k),
        "position": np.tile(np.arange(k), s),
        "item": catalog.item_id[rec["item_ids"].ravel()],
        "price": catalog.price[rec["item_ids"].ravel()],
        "shown": np.ones(s * k, dtype=bool),
        "clicked": rec["click"].ravel(),
        "carted": rec["cart"].ravel(),
        "purchased": rec["purchase"].ravel(),
        "left": np.repeat(rec["left"], k),
        "propensity": rec["propensity"].ravel(),
    })


@dataclass
class ReferenceLogs:
    """Logs of the reference world: the tidy frame and per-slate-size step arrays."""

    frame: pd.DataFrame
    steps: dict[int, StepData]
    description: dict = field(default_factory=dict)

    def split(self, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> tuple["ReferenceLogs", ...]:
        """Time-ordered train / validation / test (``ecomsim.data.schema.split_sessions_by_time``)."""
        out = []
        for keep in split_sessions_by_time(self.frame, fractions):
            frame = self.frame[self.frame["session"].isin(keep)].reset_index(drop=True)
            steps = {k: s.take(np.isin(s.session, keep)) for k, s in self.steps.items()}
            out.append(ReferenceLogs(frame, steps, dict(self.description)))
        return tuple(out)


def log_reference_world(
    num_sessions: int,
    seed: int = 0,
    slate_size: int = 1,
    policy: LoggingPolicy | None = None,
    config: EnvConfig | None = None,
    catalog: Catalog | None = None,
    batch: int = 4096,
    first_session: int = 0,
) -> ReferenceLogs:
    """Run the reference world under the randomised logging policy and log every impression.

    Args:
        num_sessions: sessions to log (all run to their end).
        seed: seeds the session streams and the policy; same seed, same logs.
        slate_size: items shown per step (positions ``0..slate_size-1``).
        policy: the logging policy (default :class:`LoggingPolicy`).
        config: env options (retrieval, ``max_steps``; ``mode``/``slate_size`` are set here).
            Default: the reference world on its own catalog (``catalog="reference"``).
        catalog: the catalog (default: ``config.catalog``).
        batch: sessions stepped together.
        first_session: id of the first session (to log several runs without clashes).
    """
    if not isinstance(num_sessions, int) or num_sessions < 1:
        raise ValueError(f"num_sessions must be a positive integer, got {num_sessions!r}")
    policy = policy or LoggingPolicy()
    base = config or EnvConfig(user_model="reference", catalog="reference")
    mode = "recommend" if slate_size == 1 else "slate"
    cfg = EnvConfig.from_kwargs(base.to_dict(), mode=mode, slate_size=slate_size, user_model="reference")
    catalog = catalog or load_catalog(cfg.catalog)
    run = _LoggingRun(cfg, catalog, policy, np.random.default_rng(seed), slate_size, num_sessions,
                      min(batch, num_sessions), first_session)
    rec = run.run()
    steps = StepData(**{f.name: (run.positions.astype(np.float32) if f.name == "positions" else rec[f.name])
                        for f in fields(StepData)})
    description = {
        "source": "reference world (ecomsim.shoppers.reference defaults)",
        "num_sessions": num_sessions,
        "seed": seed,
        "slate_size": slate_size,
        "logging_policy": {"mix": dict(policy.mix), "temperature": policy.temperature, "epsilon": policy.epsilon},
        "catalog": catalog.meta,
        "num_candidates": cfg.num_candidates,
        "max_steps": cfg.max_steps,
    }
    frame = _log_frame(rec, catalog, slate_size, num_sessions, first_session)
    return ReferenceLogs(validate_logs(frame, "reference logs"), {slate_size: steps}, description)


def merge_logs(parts: list[ReferenceLogs]) -> ReferenceLogs:
    """Concatenate logs with disjoint session ids (e.g. one run per slate size)."""
    frame = pd.concat([p.frame for p in parts], ignore_index=True)
    steps: dict[int, list[StepData]] = {}
    for p in parts:
        for k, s in p.steps.items():
            steps.setdefault(k, []).append(s)
    return ReferenceLogs(frame, {k: StepData.concat(v) for k, v in steps.items()},
                         {"parts": [p.description for p in parts]})


def training_logs(sessions: int, slate_sessions: int, seed: int = 0, slate_size: int = 5,
                  policy: LoggingPolicy | None = None) -> ReferenceLogs:
    """The behaviour model's training logs: ``sessions`` recommend sessions (seed ``seed``) and ``slate_sessions``
    sessions of ``slate_size`` items (seed ``seed + 1``), merged, under ``policy`` (default :class:`LoggingPolicy`);
    ``scripts/train_behavior.py``'s recipe."""
    parts = [log_reference_world(sessions, seed=seed, slate_size=1, policy=policy)]
    if slate_sessions > 0:
        parts.append(log_reference_world(slate_sessions, seed=seed + 1, slate_size=slate_size, policy=policy,
                                         first_session=sessions))
    return merge_logs(parts)
