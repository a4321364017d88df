"""Training, calibration and held-out metrics of the DNN behaviour model.

The loss is the log-likelihood of everything a step logged: the click of every
shown item, cart given click, purchase given cart and leaving at the step's
outcome level, summed and divided by the number of steps. Early stopping keeps
the epoch with the best validation loss; then each head gets Platt scaling
(``sigmoid(a * logit + b)``) fitted on the validation set. TensorBoard tags are
``behavior/...`` (``ecomsim.metrics.BEHAVIOR_TAGS``).

With a ``checkpoint`` file, the state at the end of every epoch (network, optimiser,
learning-rate schedule, batch-order RNG, best epoch so far, history) is written
atomically; ``resume=True`` continues from it, bit for bit as if never stopped.
``should_stop`` is polled every batch: the running epoch is dropped and training ends
with :class:`~ecomsim.errors.TrainingStopped`, the last epoch's checkpoint being the
safe point (a shipped-build epoch takes about 40 s, too long to finish on SIGTERM).
"""

from __future__ import annotations

import copy
import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ecomsim.cards import load_tensors, require_keys, write_atomic
from ecomsim.config import CHANNELS
from ecomsim.data.schema import StepData
from ecomsim.errors import TrainingStopped
from ecomsim.metrics import BEHAVIOR_TAGS
from ecomsim.shoppers.network import HEADS, BehaviorNet

CHECKPOINT_FORMAT = "ecomsim-behavior-checkpoint-v1"

@dataclass(frozen=True)
class BehaviorTrainConfig:
    """Options of :func:`train_behavior`."""

    hidden: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-6
    batch_steps: int = 1024
    max_epochs: int = 30
    patience: int = 3
    lr_patience: int = 1
    seed: int = 0
    threads: int = 1
    max_seconds: float = 420.0
    log_dir: str | None = None

    def __post_init__(self) -> None:
        for name in ("hidden", "batch_steps", "max_epochs", "patience", "threads"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"BehaviorTrainConfig.{name} must be a positive integer, got {v!r}")
        if not self.lr > 0:
            raise ValueError(f"BehaviorTrainConfig.lr must be > 0, got {self.lr}")


# ================================================================ metrics
def auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC (NaN when only one class is present)."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y).ravel().astype(bool)
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, np.asarray(p).ravel()))


def ece(y: np.ndarray, p: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error over equal-mass bins of the predicted probability."""
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if len(y) == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    total = 0.0
    for chunk in np.array_split(order, bins):
        if len(chunk):
            total += len(chunk) * abs(y[chunk].mean() - p[chunk].mean())
    return float(total / len(y))


# ================================================================ tensors
def step_tensors(s: StepData) -> dict[str, torch.Tensor]:
    """The arrays of ``s`` as torch tensors (float32 features, int64 channel), for :func:`step_loss`."""
    return {
        "user": torch.from_numpy(np.ascontiguousarray(s.user, dtype=np.float32)),
        "items": torch.from_numpy(np.ascontiguousarray(s.items, dtype=np.float32)),
        "positions": torch.from_numpy(np.asarray(s.positions, dtype=np.float32)),
        "channel": torch.from_numpy(s.channel.astype(np.int64)),
        "click": torch.from_numpy(s.click.astype(np.float32)),
        "cart": torch.from_numpy(s.cart.astype(np.float32)),
        "purchase": torch.from_numpy(s.purchase.astype(np.float32)),
        "left": torch.from_numpy(s.left.astype(np.float32)),
        "level": torch.from_numpy(s.level.astype(np.int64)),
    }


def step_loss(net: BehaviorNet, b: dict[str, torch.Tensor], idx: torch.Tensor | None = None) -> torch.Tensor:
    """Summed negative log-likelihood of the steps ``idx`` (all when None)."""
    g = b if idx is None else {k: (v if k == "positions" else v[idx]) for k, v in b.items()}
    log_click, cart, buy, leave = net.raw(g["user"], g["items"], g["positions"], g["channel"])
    log_no = torch.log1p(-torch.exp(log_click).clamp(max=1 - 1e-6))
    nll = -(g["click"] * log_click + (1 - g["click"]) * log_no).sum()
    bce = nn.functional.binary_cross_entropy_with_logits
    nll = nll + (bce(cart, g["cart"], reduction="none") * g["click"]).sum()
    nll = nll + (bce(buy, g["purchase"], reduction="none") * g["cart"]).sum()
    lv = leave.gather(1, g["level"][:, None])[:, 0]
    return nll + bce(lv, g["left"], reduction="sum")


def _set_normalisation(net: BehaviorNet, train: dict[int, StepData]) -> None:
    user = np.concatenate([s.user for s in train.values()])
    items = np.concatenate([s.items.reshape(-1, s.items.shape[2]) for s in train.values()])
    for name, arr in (("user", user), ("item", items)):
        mean, std = arr.mean(axis=0), arr.std(axis=0)
        std = np.where(std < 1e-6, 1.0, std)
        getattr(net, f"{name}_mean").copy_(torch.from_numpy(mean.astype(np.float32)))
        getattr(net, f"{name}_std").copy_(torch.from_numpy(std.astype(np.float32)))


def _eval_loss(net: BehaviorNet, data: dict[int, dict[str, torch.Tensor]], chunk: int = 16384) -> float:
    total, steps = 0.0, 0
    with torch.no_grad():
        for b in data.values():
            n = b["user"].shape[0]
            for a in range(0, n, chunk):
                total += float(step_loss(net, b, torch.arange(a, min(a + chunk, n))))
            steps += n
    return total / max(steps, 1)


def predict_steps(net: BehaviorNet, s: StepData, chunk: int = 16384) -> dict[str, np.ndarray]:
    """Calibrated probabilities on logged steps: ``click``/``cart``/``purchase`` ``(S, k)``, ``leave`` ``(S,)`` at the logged level."""
    b = step_tensors(s)
    out = {h: [] for h in HEADS}
    net.eval()
    with torch.inference_mode():
        for a in range(0, len(s), chunk):
            sl = slice(a, a + chunk)
            click, cart, buy, leave = net(b["user"][sl], b["items"][sl], b["positions"], b["channel"][sl])
            out["click"].append(click.numpy())
            out["cart"].append(cart.numpy())
            out["purchase"].append(buy.numpy())
            out["leave"].append(leave.gather(1, b["level"][sl][:, None])[:, 0].numpy())
    return {h: np.concatenate(v) for h, v in out.items()}


def fit_calibration(net: BehaviorNet, val: dict[int, StepData]) -> list[list[float]]:
    """Platt scaling per head on the validation steps; writes ``net.calibration`` and returns it."""
    net.calibration.copy_(torch.tensor([[1.0, 0.0]] * len(HEADS)))
    logits: dict[str, list[np.ndarray]] = {h: [] for h in HEADS}
    labels: dict[str, list[np.ndarray]] = {h: [] for h in HEADS}
    for s in val.values():
        pr = predict_steps(net, s)
        lg = {h: np.log(np.clip(pr[h], 1e-7, 1 - 1e-7)) - np.log1p(-np.clip(pr[h], 1e-7, 1 - 1e-7)) for h in HEADS}
        logits["click"].append(lg["click"].ravel())
        labels["click"].append(s.click.ravel())
        logits["cart"].append(lg["cart"][s.click])
        labels["cart"].append(s.cart[s.click])
        logits["purchase"].append(lg["purchase"][s.cart])
        labels["purchase"].append(s.purchase[s.cart])
        logits["leave"].append(lg["leave"])
        labels["leave"].append(s.left)
    params = []
    for h in HEADS:
        x = torch.from_numpy(np.concatenate(logits[h]).astype(np.float64))
        y = torch.from_numpy(np.concatenate(labels[h]).astype(np.float64))
        ab = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([ab], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = nn.functional.binary_cross_entropy_with_logits(ab[0] * x + ab[1], y)
            loss.backward()
            return loss

        if len(y) and 0 < float(y.sum()) < len(y):
            opt.step(closure)
        params.append([float(ab[0].detach()), float(ab[1].detach())])
    net.calibration.copy_(torch.tensor(params, dtype=torch.float32))
    return params


def heldout_metrics(net: BehaviorNet, test: dict[int, StepData]) -> dict[str, float]:
    """Click / purchase AUC next to the Bayes-optimal AUC (reference probabilities), ECE per head, mean rates."""
    y = {h: [] for h in ("click", "purchase", "cart", "buy", "leave")}
    p = {h: [] for h in y}
    ref = {h: [] for h in ("click", "purchase")}
    for s in test.values():
        pr = predict_steps(net, s)
        y["click"].append(s.click.ravel())
        p["click"].append(pr["click"].ravel())
        y["purchase"].append(s.purchase.ravel())
        p["purchase"].append((pr["click"] * pr["cart"] * pr["purchase"]).ravel())
        y["cart"].append(s.cart[s.click])
        p["cart"].append(pr["cart"][s.click])
        y["buy"].append(s.purchase[s.cart])
        p["buy"].append(pr["purchase"][s.cart])
        y["leave"].append(s.left)
        p["leave"].append(pr["leave"])
        ref["click"].append(s.ref_click.ravel())
        ref["purchase"].append((s.ref_click * s.ref_cart * s.ref_purchase).ravel())
    cat = lambda d: {k: np.concatenate(v) for k, v in d.items()}  # noqa: E731
    y, p, ref = cat(y), cat(p), cat(ref)
    out = {
        "click_auc": auc(y["click"], p["click"]),
        "click_auc_bayes": auc(y["click"], ref["click"]),
        "purchase_auc": auc(y["purchase"], p["purchase"]),
        "purchase_auc_bayes": auc(y["purchase"], ref["purchase"]),
        "click_ece": ece(y["click"], p["click"]),
        "cart_ece": ece(y["cart"], p["cart"]),
        "purchase_ece": ece(y["buy"], p["buy"]),
        "leave_ece": ece(y["leave"], p["leave"]),
        "click_rate": float(y["click"].mean()),
        "click_rate_model": float(p["click"].mean()),
        "num_impressions": int(len(y["click"])),
        "num_purchases": int(y["purchase"].sum()),
    }
    out["click_auc_ratio"] = out["click_auc"] / out["click_auc_bayes"]
    out["purchase_auc_ratio"] = out["purchase_auc"] / out["purchase_auc_bayes"]
    return out


# =============================================================== training
def train_behavior(
    train: dict[int, StepData], val: dict[int, StepData], config: BehaviorTrainConfig | None = None,
    item_dim: int | None = None, checkpoint: str | Path | None = None, resume: bool = False,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[BehaviorNet, list[dict[str, float]]]:
    """Train a :class:`BehaviorNet` with early stopping on the validation loss, then calibrate it.

    Args:
        train, val: step arrays per slate size (``ecomsim.data.schema.StepData``).
        config: options (default :class:`BehaviorTrainConfig`).
        item_dim: item feature width (default: the training data's).
        checkpoint: file for the end-of-epoch checkpoint (none when ``None``).
        resume: continue from ``checkpoint`` (it must exist and match the options and data).
        should_stop: polled every batch; when true, training ends with ``TrainingStopped``.

    Returns:
        The calibrated network (the best epoch's weights) and one record per epoch
        (``epoch``, ``train_loss``, ``val_loss``, ``epoch_seconds``, ``lr``).
    """
    cfg = config or BehaviorTrainConfig()
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if resume and (ckpt is None or not ckpt.is_file()):
        raise FileNotFoundError(f"resume: no behaviour checkpoint at {str(ckpt) if ckpt else None!r}; train without resume first")
    torch.set_num_threads(cfg.threads)
    gen = torch.Generator().manual_seed(cfg.seed)
    first = next(iter(train.values()))
    with torch.random.fork_rng(devices=[]):  # parameter init from our seed without touching the caller's global state
        torch.manual_seed(cfg.seed)
        net = BehaviorNet(first.user.shape[1], item_dim or first.items.shape[2], len(CHANNELS), cfg.hidden)
    _set_normalisation(net, train)
    tr = {k: step_tensors(s) for k, s in train.items()}
    va = {k: step_tensors(s) for k, s in val.items()}
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # a plateau in validation loss first cuts the step size; early stopping ends the run later
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.3, patience=cfg.lr_patience)
    run = _Run(best=float("inf"), best_state=copy.deepcopy(net.state_dict()), bad=0, history=[], seconds=0.0)
    fingerprint = {"config": _cfg_json(cfg), "steps": {str(k): len(s) for k, s in train.items()},
                   "val_steps": {str(k): len(s) for k, s in val.items()}}
    if resume:
        run = _load_checkpoint(ckpt, fingerprint, net, opt, sched, gen)
    writer = _writer(cfg.log_dir)
    start = time.perf_counter() - run.seconds
    for epoch in range(len(run.history), cfg.max_epochs):
        if run.bad >= cfg.patience or time.perf_counter() - start > cfg.max_seconds:
            break  # a resumed run that had already stopped early
        t0 = time.perf_counter()
        train_loss = _train_epoch(net, opt, tr, cfg.batch_steps, gen, should_stop)
        if train_loss is None:  # stopped: the epoch is dropped, the previous epoch's checkpoint is the safe point
            if writer:
                writer.close()
            raise TrainingStopped(ckpt if ckpt is not None and (resume or epoch > 0) else None,
                                  f"epoch {epoch + 1} of at most {cfg.max_epochs} ({epoch} done)")
        net.eval()
        val_loss = _eval_loss(net, va)
        sched.step(val_loss)
        rec = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "epoch_seconds": time.perf_counter() - t0,
               "lr": opt.param_groups[0]["lr"]}
        run.history.append(rec)
        if writer:
            for key in ("train_loss", "val_loss", "epoch_seconds"):
                writer.add_scalar(BEHAVIOR_TAGS[key], rec[key], epoch)
        if val_loss < run.best - 1e-5:
            run.best, run.best_state, run.bad = val_loss, copy.deepcopy(net.state_dict()), 0
        else:
            run.bad += 1
        run.seconds = time.perf_counter() - start
        if ckpt is not None:
            _save_checkpoint(ckpt, fingerprint, net, opt, sched, gen, run)
        if run.bad >= cfg.patience or time.perf_counter() - start > cfg.max_seconds:
            break
    net.load_state_dict(run.best_state)
    net.eval()
    fit_calibration(net, val)
    if writer:
        _log_heldout(writer, net, val, len(run.history))
    return net, run.history


@dataclass
class _Run:
    """The training loop's state between epochs (what a checkpoint holds besides the modules)."""

    best: float
    best_state: dict
    bad: int
    history: list
    seconds: float


def _cfg_json(cfg: BehaviorTrainConfig) -> dict:
    """Options that must match for a resume (not ``max_epochs``, ``max_seconds``, ``threads``, ``log_dir``)."""
    d = asdict(cfg)
    for key in ("max_epochs", "max_seconds", "threads", "log_dir"):
        d.pop(key)
    return d


def _save_checkpoint(path: Path, fingerprint: dict, net: BehaviorNet, opt, sched, gen: torch.Generator, run: _Run) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "fingerprint": json.dumps(fingerprint), "net": net.state_dict(),
                "opt": opt.state_dict(), "sched": json.dumps(sched.state_dict()), "rng": gen.get_state(),
                "best_state": run.best_state, "run": json.dumps({"best": run.best, "bad": run.bad, "history": run.history,
                                                                 "seconds": run.seconds})}, buf)
    write_atomic(path, buf.getvalue())


def _load_checkpoint(path: Path, fingerprint: dict, net: BehaviorNet, opt, sched, gen: torch.Generator) -> _Run:
    ck = load_tensors(path, "behaviour checkpoint")
    where = f"behaviour checkpoint {str(path)!r}"
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        found = ck.get("format") if isinstance(ck, dict) else type(ck).__name__
        raise ValueError(f"{where} has format {found!r}, expected {CHECKPOINT_FORMAT!r}")
    require_keys(ck, ("fingerprint", "net", "opt", "sched", "rng", "best_state", "run"), where)
    saved = json.loads(ck["fingerprint"])
    if saved != fingerprint:
        diff = {k: (saved.get(k), fingerprint.get(k)) for k in fingerprint if saved.get(k) != fingerprint.get(k)}
        raise ValueError(f"{where} was written for other options or logs (checkpoint, now): {diff}; match them or delete it")
    try:
        net.load_state_dict(ck["net"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(json.loads(ck["sched"]))
        gen.set_state(ck["rng"])
        run = json.loads(ck["run"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{where} does not fit this network: {str(exc).splitlines()[0]}") from None
    return _Run(best=run["best"], best_state=ck["best_state"], bad=run["bad"], history=run["history"], seconds=run["seconds"])


def _writer(log_dir: str | None):
    if not log_dir:
        return None
    from torch.utils.tensorboard import SummaryWriter  # imported lazily: tensorboard is slow to import

    return SummaryWriter(log_dir)


def _train_epoch(net: BehaviorNet, opt: torch.optim.Optimizer, tr: dict[int, dict[str, torch.Tensor]],
                 batch_steps: int, gen: torch.Generator, should_stop: Callable[[], bool] | None = None) -> float | None:
    """One pass over the training steps in seeded batches (each of one slate size); the mean loss per step
    (``None`` when ``should_stop()`` turned true before the end)."""
    net.train()
    batches = []
    for k, b in tr.items():
        perm = torch.randperm(b["user"].shape[0], generator=gen)
        batches += [(k, perm[a : a + batch_steps]) for a in range(0, len(perm), batch_steps)]
    order = torch.randperm(len(batches), generator=gen).tolist()
    total, steps = 0.0, 0
    for i in order:
        if should_stop is not None and should_stop():
            return None
        k, idx = batches[i]
        loss = step_loss(net, tr[k], idx)
        opt.zero_grad()
        (loss / len(idx)).backward()
        opt.step()
        total += float(loss.detach())
        steps += len(idx)
    return total / steps


def _log_heldout(writer, net: BehaviorNet, val: dict[int, StepData], step: int) -> None:
    """The calibrated model's validation AUCs and click ECE, then close the writer."""
    m = heldout_metrics(net, val)
    for key, tag in (("click_auc", "val_click_auc"), ("purchase_auc", "val_purchase_auc"), ("click_ece", "val_click_ece")):
        writer.add_scalar(BEHAVIOR_TAGS[tag], m[key], step)
    writer.close()
