"""Interaction logs: one tidy schema for every source, and the reference-world logger.

**The schema** (a pandas DataFrame, one row per impression; ``validate_logs``):

=========== ======================= ================================================
column      dtype                   meaning
=========== ======================= ================================================
session     int64                   session id
user        int64                   user id (a hash where the source has none)
timestamp   datetime64[ns, UTC]     when the item was shown (or first touched)
channel     string                  ``app`` / ``web`` / ``social`` / ``unknown``
step        int64 >= 0              step of the session
position    Int64 >= 0 (nullable)   slot on the page, top 0; NA when unknown
item        int64                   item id of the source
price       float64 > 0 or NaN      price shown, currency units; NaN when unknown
shown       bool                    the item was on screen
clicked     boolean (nullable)      clicked / viewed; NA when the source lacks it
carted      boolean (nullable)      added to cart (implies clicked)
purchased   boolean (nullable)      bought (implies carted)
left        boolean (nullable)      the session ended after this step
propensity  float64 in (0, 1]/NaN   logging policy's probability of this item at
                                    this position given the earlier positions
=========== ======================= ================================================

Sources: :func:`log_reference_world` (here), the Open Bandit Dataset and generic
event CSVs (``ecomsim.data.loaders``). Splits are by time (:func:`time_split`).

**The logging policy** (:class:`LoggingPolicy`) must visit the states the
evaluated policies visit, or the learned simulator is only right off their path:
each session follows one behaviour drawn from a mix (random, popularity,
click-greedy, purchase-greedy), softened by a softmax over log scores and an
epsilon of uniform exploration; slates are drawn Plackett-Luce, so every row's
propensity is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from ecomsim.catalog import Catalog, load_catalog
from ecomsim.config import CHANNELS, EnvConfig

LOG_COLUMNS: dict[str, str] = {
    "session": "int64",
    "user": "int64",
    "timestamp": "datetime64[ns, UTC]",
    "channel": "string",
    "step": "int64",
    "position": "Int64",
    "item": "int64",
    "price": "float64",
    "shown": "bool",
    "clicked": "boolean",
    "carted": "boolean",
    "purchased": "boolean",
    "left": "boolean",
    "propensity": "float64",
}
LOG_CHANNELS = (*CHANNELS, "unknown")
LOG_START = pd.Timestamp("2026-01-01", tz="UTC")
LOG_DAYS = 30


def _bad(name: str, column: str, mask: np.ndarray, values, expected: str) -> ValueError:
    row = int(np.flatnonzero(mask)[0])
    value = values[row].item() if hasattr(values[row], "item") else values[row]  # plain repr, not np.int64(...)
    return ValueError(f"{name}: column {column!r} at row {row} has value {value!r}; expected {expected} "
                      f"({int(mask.sum())} bad rows in all)")


def validate_logs(df: pd.DataFrame, name: str = "logs") -> pd.DataFrame:
    """Check a log frame against the schema; return it with canonical dtypes and column order.

    Raises:
        ValueError: naming the column, the first bad row, its value and what was expected.
    """
    missing = [c for c in LOG_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{name}: missing columns {missing}; the log schema is {list(LOG_COLUMNS)}")
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    for col, dtype in LOG_COLUMNS.items():
        s = df[col].reset_index(drop=True)
        try:
            if dtype.startswith("datetime"):
                s = pd.to_datetime(s, utc=True).dt.as_unit("ns")
            else:
                s = s.astype(dtype)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: column {col!r} cannot be read as {dtype}: {exc}") from exc
        out[col] = s
    for col in ("session", "user", "timestamp", "step", "item", "shown"):
        if out[col].isna().any():
            raise _bad(name, col, out[col].isna().to_numpy(), out[col].to_numpy(), "a value (no missing entries)")
    checks = [
        ("step", (out["step"] < 0).to_numpy(), ">= 0"),
        ("position", (out["position"].fillna(0) < 0).to_numpy(), ">= 0 or NA"),
        ("price", (out["price"] <= 0).to_numpy(), "> 0 or NaN"),
        ("propensity", ((out["propensity"] <= 0) | (out["propensity"] > 1)).to_numpy(), "in (0, 1] or NaN"),
        ("channel", (~out["channel"].isin(LOG_CHANNELS)).to_numpy(), f"one of {list(LOG_CHANNELS)}"),
    ]
    for col, mask, expected in checks:
        if mask.any():
            raise _bad(name, col, mask, out[col].to_numpy(), expected)
    for child, parent in (("carted", "clicked"), ("purchased", "carted"), ("clicked", "shown")):
        mask = (out[child].fillna(False) & ~out[parent].fillna(True).astype(bool)).to_numpy()
        if mask.any():
            raise _bad(name, child, mask, out[child].to_numpy(), f"False where {parent!r} is False ({child} implies {parent})")
    return out


def empty_logs() -> pd.DataFrame:
    return validate_logs(pd.DataFrame({c: pd.Series([], dtype="object") for c in LOG_COLUMNS}))


def time_split(df: pd.DataFrame, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> tuple[pd.DataFrame, ...]:
    """Train / validation / test frames by session start time (a session never straddles two splits)."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must be three non-negative shares summing to 1, got {fractions}")
    start = df.groupby("session", sort=False)["timestamp"].min().sort_values(kind="stable")
    n = len(start)
    cut1 = int(round(fractions[0] * n))
    cut2 = int(round((fractions[0] + fractions[1]) * n))
    parts = (start.index[:cut1], start.index[cut1:cut2], start.index[cut2:])
    return tuple(df[df["session"].isin(p)].reset_index(drop=True) for p in parts)


# ======================================================== reference world
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
        kinds = ("random", "popularity", "click_greedy", "greedy")
        for kind, share in self.mix:
            if kind not in kinds:
                raise ValueError(f"LoggingPolicy.mix behaviour must be one of {list(kinds)}, got {kind!r}")
            if share < 0:
                raise ValueError(f"LoggingPolicy.mix share of {kind!r} must be >= 0, got {share}")
        if not 0 < self.temperature <= 100:
            raise ValueError(f"LoggingPolicy.temperature must be in (0, 100], got {self.temperature}")
        if not 0 < self.epsilon <= 1:
            raise ValueError(f"LoggingPolicy.epsilon must be in (0, 1], got {self.epsilon}")


@dataclass
class StepData:
    """Per-step arrays of logged sessions shown ``k`` items each (``S`` steps), for training.

    ``user`` ``(S, U)`` and ``items`` ``(S, k, F)`` are the :class:`~ecomsim.shoppers.behavior.SessionTracker`
    features; ``ref_*`` are the reference world's own probabilities on the same rows
    (for the Bayes-optimal AUC; NaN when the source is not the reference world).
    """

    session: np.ndarray
    step: np.ndarray
    user: np.ndarray
    items: np.ndarray
    item_ids: np.ndarray
    positions: np.ndarray
    channel: np.ndarray
    click: np.ndarray
    cart: np.ndarray
    purchase: np.ndarray
    left: np.ndarray
    level: np.ndarray
    ref_click: np.ndarray
    ref_cart: np.ndarray
    ref_purchase: np.ndarray
    ref_leave: np.ndarray

    def __len__(self) -> int:
        return int(self.session.shape[0])

    def take(self, mask: np.ndarray) -> "StepData":
        return StepData(**{f.name: (getattr(self, f.name) if f.name == "positions" else getattr(self, f.name)[mask])
                           for f in fields(self)})

    @staticmethod
    def concat(parts: list["StepData"]) -> "StepData":
        first = parts[0]
        return StepData(**{f.name: (first.positions if f.name == "positions" else
                                    np.concatenate([getattr(p, f.name) for p in parts]))
                           for f in fields(first)})


@dataclass
class ReferenceLogs:
    """Logs of the reference world: the tidy frame and per-slate-size step arrays."""

    frame: pd.DataFrame
    steps: dict[int, StepData]
    description: dict = field(default_factory=dict)

    def split(self, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> tuple["ReferenceLogs", ...]:
        """Time-ordered train / validation / test by session start time."""
        start = self.frame.groupby("session", sort=False)["timestamp"].min().sort_values(kind="stable")
        sessions = start.index.to_numpy()
        n = len(sessions)
        cuts = [0, int(round(fractions[0] * n)), int(round((fractions[0] + fractions[1]) * n)), n]
        out = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            keep = sessions[a:b]
            frame = self.frame[self.frame["session"].isin(keep)].reset_index(drop=True)
            steps = {k: s.take(np.isin(s.session, keep)) for k, s in self.steps.items()}
            out.append(ReferenceLogs(frame, steps, dict(self.description)))
        return tuple(out)


def _softmax_rows(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


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
    from ecomsim.shoppers.behavior import SessionTracker
    from ecomsim.sim.core import SimulationCore
    from ecomsim.shoppers.reference import ReferenceWorld
    from ecomsim.sim.streams import key_from_generator

    if not isinstance(num_sessions, int) or num_sessions < 1:
        raise ValueError(f"num_sessions must be a positive integer, got {num_sessions!r}")
    policy = policy or LoggingPolicy()
    base = config or EnvConfig(user_model="reference", catalog="reference")
    mode = "recommend" if slate_size == 1 else "slate"
    cfg = EnvConfig.from_kwargs(base.to_dict(), mode=mode, slate_size=slate_size, user_model="reference")
    catalog = catalog or load_catalog(cfg.catalog)

    class _Tapped(ReferenceWorld):
        def reset_sessions(self, idx):
            super().reset_sessions(idx)
            tracker.reset(idx)

        def update(self, items, shown, clicked, carted, purchased):
            tracker.update(items, shown, clicked)  # before the reference world's latent update: same order as the DNN
            super().update(items, shown, clicked, carted, purchased)

    rng = np.random.default_rng(seed)
    b = min(batch, num_sessions)
    shopper = _Tapped()
    core = SimulationCore(cfg, catalog, shopper, b)
    tracker = SessionTracker(core.state)
    kinds = [k for k, _ in policy.mix]
    mix = np.array([s for _, s in policy.mix], dtype=np.float64)
    mix /= mix.sum()
    rows = np.arange(b)
    sid = rows + first_session
    active = np.ones(b, dtype=bool)
    behaviour = rng.choice(len(kinds), size=b, p=mix)
    core.reset(rows, key_from_generator(rng, b))
    next_sid = b
    m, k = cfg.num_candidates, slate_size
    positions = np.arange(k, dtype=np.float64)
    log_pop = np.log(catalog.popularity)
    rec: dict[str, list[np.ndarray]] = {}

    def add(name: str, arr: np.ndarray) -> None:
        rec.setdefault(name, []).append(arr)

    while active.any():
        cand = core.candidates
        scores = np.zeros((b, m))
        names = np.array(kinds)[behaviour]
        need_model = np.isin(names, ["click_greedy", "greedy"])
        if need_model.any():
            r = core.candidate_reaction()
            scores = np.where((names == "click_greedy")[:, None], np.log(r.click + 1e-12), scores)
            scores = np.where((names == "greedy")[:, None], np.log(r.purchase_total + 1e-12), scores)
        scores = np.where((names == "popularity")[:, None], log_pop[cand], scores)
        probs = (1 - policy.epsilon) * _softmax_rows(scores / policy.temperature) + policy.epsilon / m
        slots = np.empty((b, k), dtype=np.int64)
        prop = np.empty((b, k))
        avail = probs.copy()
        u = rng.random((b, k))
        for j in range(k):  # Plackett-Luce: draw without replacement, record the conditional probability
            p = avail / avail.sum(axis=1, keepdims=True)
            pick = np.minimum((np.cumsum(p, axis=1) < u[:, j : j + 1]).sum(axis=1), m - 1)
            pick = np.where(p[rows, pick] > 0, pick, np.argmax(p, axis=1))
            slots[:, j] = pick
            prop[:, j] = p[rows, pick]
            avail[rows, pick] = 0.0
        items = cand[rows[:, None], slots]
        user_f = tracker.user_features()
        item_f = tracker.item_features(items)
        steps = core.step_count.copy()
        ch = core.portraits.channel.copy()
        ref = shopper.reaction(items, positions)
        out = core.step(slots)
        level = np.where(out.purchased.any(axis=1), 2, np.where(out.clicked.any(axis=1), 1, 0))
        a = active
        for name, arr in (("session", sid), ("step", steps), ("user", user_f), ("items", item_f), ("item_ids", items),
                          ("channel", ch), ("click", out.clicked), ("cart", out.carted), ("purchase", out.purchased),
                          ("left", out.left), ("level", level), ("ref_click", ref.click), ("ref_cart", ref.cart),
                          ("ref_purchase", ref.purchase), ("ref_leave", ref.leave), ("propensity", prop),
                          ("behaviour", behaviour)):
            add(name, arr[a])
        done = np.flatnonzero(out.terminated | out.truncated)
        if len(done):
            fresh = done[: max(0, min(len(done), num_sessions - next_sid))]
            active[np.setdiff1d(done, fresh)] = False
            sid[fresh] = np.arange(next_sid, next_sid + len(fresh)) + first_session
            next_sid += len(fresh)
            behaviour[fresh] = rng.choice(len(kinds), size=len(fresh), p=mix)
            core.reset(done)

    cat = {name: np.concatenate(parts) for name, parts in rec.items()}
    steps = StepData(**{f.name: (positions.astype(np.float32) if f.name == "positions" else cat[f.name]) for f in fields(StepData)})
    s, kk = len(steps), k
    frame = pd.DataFrame({
        "session": np.repeat(cat["session"], kk).astype(np.int64),
        "user": np.repeat(cat["session"], kk).astype(np.int64),  # one session per simulated shopper
        # sessions arrive evenly over LOG_DAYS whatever their number, steps 20 s apart
        "timestamp": LOG_START + pd.to_timedelta(np.repeat((cat["session"] - first_session) * (LOG_DAYS * 86400.0 / num_sessions)
                                                           + cat["step"] * 20.0, kk), unit="s"),
        "channel": np.asarray(CHANNELS, dtype=object)[np.repeat(cat["channel"], kk)],
        "step": np.repeat(cat["step"], kk),
        "position": np.tile(np.arange(kk), s),
        "item": catalog.item_id[cat["item_ids"].ravel()],
        "price": catalog.price[cat["item_ids"].ravel()],
        "shown": np.ones(s * kk, dtype=bool),
        "clicked": cat["click"].ravel(),
        "carted": cat["cart"].ravel(),
        "purchased": cat["purchase"].ravel(),
        "left": np.repeat(cat["left"], kk),
        "propensity": cat["propensity"].ravel(),
    })
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
    return ReferenceLogs(validate_logs(frame, "reference logs"), {k: steps}, description)


def merge_logs(parts: list[ReferenceLogs]) -> ReferenceLogs:
    """Concatenate logs with disjoint session ids (e.g. one run per slate size)."""
    frame = pd.concat([p.frame for p in parts], ignore_index=True)
    steps: dict[int, list[StepData]] = {}
    for p in parts:
        for k, s in p.steps.items():
            steps.setdefault(k, []).append(s)
    return ReferenceLogs(frame, {k: StepData.concat(v) for k, v in steps.items()},
                         {"parts": [p.description for p in parts]})
