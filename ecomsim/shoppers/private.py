"""Differentially private training of the behaviour model (DP-SGD through Opacus).

:func:`train_private` trains a :class:`~ecomsim.shoppers.behavior.BehaviorNet` on the
same likelihood as :func:`ecomsim.shoppers.training.train_behavior`, with guarantees
for the people in the logs:

* **Privacy unit: one session** (one simulated shopper's visit; with one session per
  user in the reference logs, user-level). DP-SGD (Abadi et al. 2016) samples sessions
  with Poisson sampling, clips each *session's* summed gradient to
  ``max_grad_norm`` and adds Gaussian noise of ``noise_multiplier * max_grad_norm``
  to the batch sum (Opacus' ``DPOptimizer``). Opacus computes per-*row* (per-step)
  gradients; the rows of a session are summed into one sample before clipping, so a
  session of any length moves the model by at most ``max_grad_norm``.
* **Normalisation buffers** (``user_mean`` / ``std``, ``item_mean`` / ``std``) are
  data too. They come from two Gaussian-mechanism releases over all training
  sessions: each session's mean feature vector (clipped to L2 norm ``stats_clip``),
  then each session's mean absolute deviation from the released means (clipped
  likewise), each summed with noise ``stats_noise_multiplier * stats_clip``; scale =
  ``sqrt(pi / 2) *`` mean absolute deviation (the standard deviation for normal
  features), floored at ``MIN_SCALE``. The number of training sessions is treated as
  public, as DP-SGD's sampling rate already does.
* **Accounting**: Opacus' RDP accountant over the two releases and every DP-SGD step;
  the noise multiplier is found by bisection so that the total reaches
  ``target_epsilon`` at ``delta`` (default ``1 / (10 N)`` for ``N`` training sessions:
  below ``1 / N``, since a mechanism that publishes one random session whole meets
  ``(0, 1 / N)``).
* **Not covered by epsilon**, stated in the card: the Platt calibration
  (``calibration="public_split"`` fits it on the validation split, which must be
  data you may use without protection, such as an opt-in panel; ``"none"`` keeps
  the identity), and the choice of hyper-parameters. There is no early stopping
  (it would look at data): training runs the planned ``epochs``. Noise comes from
  torch's generator seeded by ``seed`` (``secure_mode`` off: reproducible, not a
  cryptographic source; for a real release use Opacus' ``secure_mode``).

Opacus is the optional extra ``private`` (``pip install "ecomsim[private]"``).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from ecomsim.config import CHANNELS
from ecomsim.data.schema import StepData
from ecomsim.shoppers.network import BehaviorNet
from ecomsim.shoppers.net_rows import raw_rows
from ecomsim.shoppers.training import fit_calibration, step_loss, step_tensors

MIN_SCALE = 1e-2  # floor of a released feature scale (a near-constant feature is not blown up)


@dataclass(frozen=True)
class PrivateTrainConfig:
    """Options of :func:`train_private` (privacy terms in the module docstring).

    Attributes:
        target_epsilon: total epsilon of the run (normalisation releases + DP-SGD).
        delta: the run's delta; ``None``: ``1 / (10 N)``, ``N`` training sessions.
        max_grad_norm: clipping norm of each session's summed gradient.
        batch_sessions: expected sessions per Poisson-sampled batch.
        epochs: passes over the sessions (in expectation); fixes the number of steps.
        lr: Adam learning rate.
        hidden: width of the network's layers.
        stats_noise_multiplier, stats_clip: noise multiplier and L2 clip of the two
            normalisation releases.
        calibration: ``"public_split"`` (Platt scaling on the validation split,
            treated as public) or ``"none"``.
        chunk_rows: most logged steps per forward pass (memory: per-row gradients).
        seed: parameter init, sampling and noise.
        threads: torch threads.
    """

    target_epsilon: float
    delta: float | None = None
    max_grad_norm: float = 1.0
    batch_sessions: int = 512
    epochs: int = 4
    lr: float = 1e-2  # higher than the non-private 3e-3: few, noisy steps (1e-2 beat 3e-3 at epsilon 3, 20k sessions)
    hidden: int = 64
    stats_noise_multiplier: float = 20.0
    stats_clip: float = 10.0
    calibration: str = "public_split"
    chunk_rows: int = 2048
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        if not (isinstance(self.target_epsilon, (int, float)) and 0 < self.target_epsilon < 1000):
            raise ValueError(f"PrivateTrainConfig.target_epsilon must be in (0, 1000), got {self.target_epsilon!r}")
        if self.delta is not None and not 0 < self.delta < 1:
            raise ValueError(f"PrivateTrainConfig.delta must be in (0, 1) or None, got {self.delta!r}")
        for name in ("max_grad_norm", "lr", "stats_noise_multiplier", "stats_clip"):
            if not getattr(self, name) > 0:
                raise ValueError(f"PrivateTrainConfig.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("batch_sessions", "epochs", "hidden", "chunk_rows", "threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"PrivateTrainConfig.{name} must be a positive integer, got {v!r}")
        if self.calibration not in ("public_split", "none"):
            raise ValueError(f"PrivateTrainConfig.calibration must be 'public_split' or 'none', got {self.calibration!r}")


def _opacus():
    try:
        import opacus
    except ImportError as exc:  # an optional extra
        raise ImportError("private training needs Opacus (the optional extra 'private'): pip install "
                          f"\"ecomsim[private]\" (or pip install opacus); import failed with: {exc}") from exc
    return opacus


class _DPNet(nn.Module):
    """The network's layers as Opacus sees them: the four MLPs, and the position-bias exponent as an
    ``Embedding`` (a layer with per-sample gradients; on ``BehaviorNet`` it is a bare parameter).

    The ``BehaviorNet`` itself is held outside the module tree (its buffers and bare parameter
    would make Opacus refuse the whole model); ``raw`` is its forward with the embedded slope.
    """

    def __init__(self, net: BehaviorNet) -> None:
        super().__init__()
        self.user, self.joint, self.item_head, self.leave = net.user, net.joint, net.item_head, net.leave
        self.slope = nn.Embedding(len(net.pos_slope), 1)
        with torch.no_grad():
            self.slope.weight.copy_(net.pos_slope[:, None])
        self._net = (net,)  # a tuple: not registered as a child

    def raw(self, user, items, positions, channel):
        """:meth:`BehaviorNet.raw` (shared ``(k,)`` positions) through the embedded slope."""
        lp = torch.log1p(positions)[None, :].expand(items.shape[0], items.shape[1])
        return raw_rows(self._net[0], user, items, lp, channel, slope=self.slope(channel)[:, 0])

    def forward(self, user, items, positions, channel):
        return self.raw(user, items, positions, channel)


def _session_index(train: dict[int, StepData]) -> tuple[list[tuple[int, np.ndarray]], dict[int, np.ndarray]]:
    """Training sessions as ``[(slate size, row indexes), ...]`` and per slate size the session number of every row."""
    sessions, owner = [], {}
    for k, s in train.items():
        order = np.argsort(s.session, kind="stable")
        ids, starts = np.unique(s.session[order], return_index=True)
        owner[k] = np.empty(len(s), dtype=np.int64)
        for rows in np.split(order, starts[1:]):
            owner[k][rows] = len(sessions)
            sessions.append((k, rows))
    return sessions, owner


def _session_means(train: dict[int, StepData], owner: dict[int, np.ndarray], n: int, centre: np.ndarray | None):
    """``(N, U + I)`` per-session mean of the user and item features (or of ``|x - centre|``)."""
    dim = next(iter(train.values())).user.shape[1] + next(iter(train.values())).items.shape[2]
    sums, counts = np.zeros((n, dim)), np.zeros(n)
    for k, s in train.items():
        x = np.concatenate([s.user, s.items.mean(axis=1)], axis=1).astype(np.float64)
        if centre is not None:
            u = s.user.shape[1]
            x = np.concatenate([np.abs(s.user - centre[:u]), np.abs(s.items - centre[u:]).mean(axis=1)], axis=1)
        np.add.at(sums, owner[k], x)
        np.add.at(counts, owner[k], 1.0)
    return sums / counts[:, None]


def _release(v: np.ndarray, clip: float, sigma: float, gen: np.random.Generator) -> np.ndarray:
    """Gaussian mechanism: the mean over rows of ``v`` ``(N, D)`` clipped to L2 norm ``clip``, sum noised."""
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    clipped = v * np.minimum(1.0, clip / np.maximum(norms, 1e-12))
    return (clipped.sum(axis=0) + gen.normal(0.0, sigma * clip, size=v.shape[1])) / len(v)


def private_normalisation(net: BehaviorNet, train: dict[int, StepData], cfg: PrivateTrainConfig) -> dict[str, float]:
    """Set the net's normalisation buffers from two Gaussian-mechanism releases (module docstring)."""
    sessions, owner = _session_index(train)
    n = len(sessions)
    gen = np.random.default_rng(cfg.seed + 7)
    mean = _release(_session_means(train, owner, n, None), cfg.stats_clip, cfg.stats_noise_multiplier, gen)
    mad = _release(_session_means(train, owner, n, mean), cfg.stats_clip, cfg.stats_noise_multiplier, gen)
    scale = np.maximum(math.sqrt(math.pi / 2) * mad, MIN_SCALE)
    u = net.user_mean.shape[0]
    with torch.no_grad():
        for name, sl in (("user", slice(0, u)), ("item", slice(u, None))):
            getattr(net, f"{name}_mean").copy_(torch.from_numpy(mean[sl].astype(np.float32)))
            getattr(net, f"{name}_std").copy_(torch.from_numpy(scale[sl].astype(np.float32)))
    return {"sessions": n, "noise_std_of_means": cfg.stats_noise_multiplier * cfg.stats_clip / n}


def noise_for_target(target_epsilon: float, delta: float, sample_rate: float, steps: int, stats_sigma: float) -> float:
    """Smallest DP-SGD noise multiplier whose RDP composition with two Gaussian releases (``stats_sigma``,
    sampling rate 1) reaches ``target_epsilon`` at ``delta`` (bisection to 0.5% of the multiplier, rounded up:
    the run spends at most the target)."""
    from opacus.accountants import RDPAccountant

    def eps(sigma: float) -> float:
        acc = RDPAccountant()
        acc.history = [(stats_sigma, 1.0, 2), (sigma, sample_rate, steps)]
        with warnings.catch_warnings():
            # at very large noise the best RDP order is the largest tried: a looser (larger) epsilon, never a smaller one
            warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
            return acc.get_epsilon(delta)

    if eps(1e4) > target_epsilon:
        raise ValueError(f"target_epsilon={target_epsilon} is below what the normalisation releases alone spend "
                         f"({eps(1e4):.3f} at delta={delta:.2e}); raise stats_noise_multiplier")
    lo, hi = 0.1, 1e4
    while hi / lo > 1.005:
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if eps(mid) > target_epsilon else (lo, mid)
    return hi


def train_private(
    train: dict[int, StepData], val: dict[int, StepData], config: PrivateTrainConfig,
) -> tuple[BehaviorNet, dict]:
    """Train a :class:`BehaviorNet` with DP-SGD at ``config.target_epsilon``.

    Args:
        train: ``{slate size: StepData}`` training logs (private).
        val: validation logs, used only for the Platt calibration when
            ``config.calibration == "public_split"`` (treated as public).
        config: the run's options.

    Returns:
        The calibrated network (eval mode) and the ``privacy`` record for its card
        (epsilon, delta, noise multiplier, sampling rate, steps, what is and is not covered).
    """
    opacus = _opacus()
    cfg = config
    torch.set_num_threads(cfg.threads)
    first = next(iter(train.values()))
    with torch.random.fork_rng(devices=[]):  # init from our seed without touching the caller's global state
        torch.manual_seed(cfg.seed)
        net = BehaviorNet(first.user.shape[1], first.items.shape[2], len(CHANNELS), cfg.hidden)
    sessions, owner = _session_index(train)
    n = len(sessions)
    if n < 2 * cfg.batch_sessions:
        raise ValueError(f"train holds {n} sessions; DP-SGD needs at least 2 * batch_sessions={2 * cfg.batch_sessions}")
    delta = cfg.delta if cfg.delta is not None else 1.0 / (10 * n)
    stats = private_normalisation(net, train, cfg)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.arange(n)),
                                         batch_size=cfg.batch_sessions, generator=torch.Generator().manual_seed(cfg.seed))
    sample_rate = 1.0 / len(loader)
    steps = cfg.epochs * len(loader)
    sigma = noise_for_target(cfg.target_epsilon, delta, sample_rate, steps, cfg.stats_noise_multiplier)
    net.pos_slope.requires_grad_(False)  # trained as _DPNet.slope, copied back below
    dpnet = _DPNet(net)
    engine = opacus.PrivacyEngine(accountant="rdp")
    engine.accountant.history.append((cfg.stats_noise_multiplier, 1.0, 2))  # the two normalisation releases
    gsm, opt, dp_loader = engine.make_private(
        module=dpnet, optimizer=torch.optim.Adam(dpnet.parameters(), lr=cfg.lr), data_loader=loader,
        noise_multiplier=sigma, max_grad_norm=cfg.max_grad_norm, loss_reduction="mean", poisson_sampling=True,
        noise_generator=torch.Generator().manual_seed(cfg.seed + 1),
    )
    data = {k: step_tensors(s) for k, s in train.items()}
    params = [p for p in dpnet.parameters() if p.requires_grad]
    history, t0 = [], time.perf_counter()
    for epoch in range(cfg.epochs):
        total, rows_seen = 0.0, 0
        for (batch,) in dp_loader:
            chunks = _chunks([sessions[i] for i in batch.tolist()], cfg.chunk_rows)
            if not chunks:  # an empty Poisson batch: a noise-only step, as the accounting assumes
                for p in params:
                    p.grad_sample = torch.zeros((0, *p.shape))
                opt.step()
                opt.zero_grad()
                continue
            for c, (k, rows, seg, count) in enumerate(chunks):
                idx = torch.from_numpy(rows)
                loss = step_loss(dpnet, data[k], idx)
                (loss / len(rows)).backward()
                for p in params:  # per-row gradients -> per-session sums: the session is the privacy unit
                    gs = p.grad_sample
                    p.grad_sample = torch.zeros((count, *p.shape), dtype=gs.dtype).index_add_(0, torch.from_numpy(seg), gs)
                if c < len(chunks) - 1:
                    opt.signal_skip_step(do_skip=True)  # clip and accumulate; the noisy step comes with the last chunk
                opt.step()
                opt.zero_grad()
                total += float(loss.detach())
                rows_seen += len(rows)
        history.append({"epoch": epoch, "train_loss": total / max(rows_seen, 1), "seconds": time.perf_counter() - t0})
    with torch.no_grad():
        net.pos_slope.copy_(dpnet.slope.weight[:, 0])
    net.pos_slope.requires_grad_(True)
    gsm.remove_hooks()
    clean = BehaviorNet(net.user_mean.shape[0], net.item_mean.shape[0], len(CHANNELS), cfg.hidden)
    clean.load_state_dict(net.state_dict())  # a fresh module: no Opacus attributes left on the parameters
    clean.eval()
    if cfg.calibration == "public_split":
        fit_calibration(clean, val)
    epsilon = engine.get_epsilon(delta)
    record = {
        "epsilon": float(epsilon), "delta": float(delta), "target_epsilon": float(cfg.target_epsilon),
        "accountant": "rdp (Opacus)", "unit": "session", "mechanism": "DP-SGD (Opacus), Poisson sampling of sessions",
        "noise_multiplier": float(sigma), "max_grad_norm": cfg.max_grad_norm, "sample_rate": sample_rate,
        "steps": steps, "epochs": cfg.epochs, "train_sessions": n, "expected_batch_sessions": cfg.batch_sessions,
        "normalisation": ("Gaussian mechanism: per-session mean features and mean absolute deviations, clipped to "
                          f"L2 {cfg.stats_clip}, noise multiplier {cfg.stats_noise_multiplier} (inside epsilon)"),
        "normalisation_noise_std_of_means": stats["noise_std_of_means"],
        "calibration": ("Platt scaling on the validation split, treated as public: NOT covered by epsilon"
                        if cfg.calibration == "public_split" else "none (identity)"),
        "not_covered": "hyper-parameter choices; the calibration split when calibration='public_split'",
        "secure_mode": False, "config": asdict(cfg), "history": history,
    }
    return clean, record


def _chunks(batch: list[tuple[int, np.ndarray]], chunk_rows: int) -> list[tuple[int, np.ndarray, np.ndarray, int]]:
    """Group a batch's sessions by slate size into chunks of at most ``chunk_rows`` rows (a session is never
    split): ``[(slate size, rows, session number within the chunk of every row, sessions in the chunk), ...]``."""
    groups = []
    for k in sorted({kk for kk, _ in batch}):
        group, size = [], 0
        for rows in (r for kk, r in batch if kk == k):
            if group and size + len(rows) > chunk_rows:
                groups.append((k, group))
                group, size = [], 0
            group.append(rows)
            size += len(rows)
        groups.append((k, group))
    return [(k, np.concatenate(g), np.concatenate([np.full(len(r), j) for j, r in enumerate(g)]), len(g))
            for k, g in groups]
