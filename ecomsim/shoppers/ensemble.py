"""An ensemble of behaviour models: how far the learned shoppers can be trusted, and two ways to use it.

**Members.** The behaviour network trained ``K`` times on the same reference-world logs,
each on its own bootstrap resample of the training sessions and from its own seed
(``scripts/train_ensemble.py``; validation split, early stopping and calibration as the
shipped model's). Where the logs hold many similar shoppers and items the members agree;
away from them (a catalog whose prices or categories the logs never showed) they
disagree: their spread says where the simulator guesses.

**Env options** (``ecomsim.config.EnvConfig``), all off by default:

* ``shopper_sampling="per_session"``: each session's shoppers are one member, drawn at the
  session's reset from a side stream of its key (``SessionStreams.side_uniform``: its other
  draws are untouched): domain randomisation, a policy has to work under every plausible model.
  The compiled step picks the member's weights per session (``kernels.dnn_step``: the members'
  weights stacked, the member in ``tracker.member``).
* ``uncertainty_penalty=lam`` (MOPO: Yu et al. 2020, "Model-based Offline Policy
  Optimization"): the reward minus ``lam`` times the members' **disagreement** on the step,
  the standard deviation across members of the step's expected reward (the expected
  purchases, clicks or revenue of the items shown, as ``reward`` says; each member's own
  probabilities for the same features). ``info["disagreement"]`` holds it, ``(N,)``; ``0``
  reports it without changing the reward. It costs ``K + 1`` forwards a step.
* ``ensemble_member=j``: the shoppers are member ``j`` alone: the single learned model an
  agent can exploit (the case the two options above exist for; ``docs/trust.md``).

The outcomes are driven by the session's member (``per_session``), by member ``j``
(``ensemble_member``), else by the shipped model (``ecomsim/assets/behavior.pt``).

**Files**: one weights file holding every member's ``state_dict`` (keys ``member<j>.<name>``)
and one JSON card beside it (members, their seeds and bootstrap seeds, test metrics,
training data, sha256), shipped as ``ecomsim/assets/behavior_ensemble.pt``.
"""

from __future__ import annotations

import copy
import hashlib
import io
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecomsim.cards import read_card, save_tensors
from ecomsim.config import CHANNELS, REWARDS
from ecomsim.data.schema import StepData
from ecomsim.shoppers.behavior import KERNEL_MAX_ROWS, BehaviorModel
from ecomsim.shoppers.weights import FEATURE_VERSION
from ecomsim.shoppers.network import BehaviorNet, FoldedNet
from ecomsim.sim import kernels

ENSEMBLE_FORMAT = "ecomsim-behavior-ensemble-v1"
SAMPLINGS = ("fixed", "per_session")
MEMBER_SALT = 0x6D656D626572  # "member": the side stream of a session's key its member is drawn from


# ============================================================== training data
def bootstrap_sessions(train: dict[int, StepData], rng: np.random.Generator) -> dict[int, StepData]:
    """A bootstrap resample of the training sessions: as many sessions as there are, drawn with replacement
    over all slate sizes together; a session drawn ``c`` times contributes its steps ``c`` times."""
    ids = np.sort(np.concatenate([np.unique(s.session) for s in train.values()]))
    counts = np.bincount(rng.integers(0, len(ids), size=len(ids)), minlength=len(ids))
    out = {}
    for k, s in train.items():
        mult = counts[np.searchsorted(ids, s.session)]
        out[k] = s.take(np.repeat(np.arange(len(s)), mult))
    return out


# ===================================================================== files
def save_ensemble(nets: list[BehaviorNet], path: str | Path, card: dict[str, Any]) -> dict[str, Any]:
    """Write every member's ``state_dict`` to ``path`` (one file) and the card beside it as ``.json``."""
    state = {f"member{j}.{name}": t for j, net in enumerate(nets) for name, t in net.state_dict().items()}
    return save_tensors(state, path, dict(card, format=ENSEMBLE_FORMAT, num_members=len(nets)))


def shipped_ensemble_path() -> Path:
    return Path(str(resources.files("ecomsim") / "assets" / "behavior_ensemble.pt"))


_CACHE: dict[tuple, tuple[list[BehaviorNet], dict[str, Any]]] = {}


def load_ensemble(path: str | Path | None = None) -> tuple[list[BehaviorNet], dict[str, Any]]:
    """The members and card of the ensemble at ``path`` (default: the shipped one), checked (format, feature
    schema, checksum, architecture) and cached by file identity."""
    path = Path(path or shipped_ensemble_path())
    card_path = path.with_suffix(".json")
    for p in (path, card_path):
        if not p.is_file():
            raise FileNotFoundError(f"behaviour ensemble file {str(p)!r} does not exist; build it with "
                                    "`python scripts/train_ensemble.py`")
    key = (str(path.resolve()), path.stat().st_size, path.stat().st_mtime_ns, card_path.stat().st_mtime_ns)
    if key in _CACHE:
        return _CACHE[key]
    card = read_card(card_path, ENSEMBLE_FORMAT, "behaviour ensemble")
    schema = card.get("feature_schema", {})
    if schema.get("version") != FEATURE_VERSION:
        raise ValueError(f"behaviour ensemble card {str(card_path)!r} has feature schema version "
                         f"{schema.get('version')!r}, expected {FEATURE_VERSION!r}; retrain with "
                         "`python scripts/train_ensemble.py`")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != card.get("sha256"):
        raise ValueError(f"behaviour ensemble weights {str(path)!r} have sha256 {digest}, but the card says "
                         f"{card.get('sha256')}; the file is corrupt or does not belong to this card")
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    nets = []
    for j in range(int(card["num_members"])):
        net = BehaviorNet(len(schema["user"]), len(schema["item"]), len(CHANNELS), int(card["hidden"]))
        prefix = f"member{j}."
        try:
            net.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        except RuntimeError as exc:
            raise ValueError(f"behaviour ensemble weights {str(path)!r}: member {j} does not fit the card's "
                             f"architecture: {exc}") from exc
        nets.append(net.eval())
    _CACHE[key] = (nets, card)
    return nets, card


# ===================================================================== model
class EnsembleBehaviorModel(BehaviorModel):
    """DNN shoppers with an ensemble behind them (options in the module docstring).

    Args:
        members: the ``K`` member networks (one architecture).
        schema: their feature schema (the card's ``feature_schema``).
        driver: the network that drives the outcomes when ``sampling="fixed"`` (the shipped model or
            one member); must be ``None`` with ``sampling="per_session"``.
        sampling: ``"fixed"`` or ``"per_session"``.
        penalty: ``None`` (no disagreement computed) or ``lam >= 0``.
        device: where the torch forwards run.
    """

    name = "dnn"

    def __init__(self, members: list[BehaviorNet], schema: dict[str, list[str]], driver: BehaviorNet | None = None,
                 sampling: str = "fixed", penalty: float | None = None, device: str = "cpu") -> None:
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {list(SAMPLINGS)}, got {sampling!r}")
        if (sampling == "per_session") == (driver is not None):
            raise ValueError("give a driver network with sampling='fixed' and none with sampling='per_session'")
        if penalty is not None and not penalty >= 0:
            raise ValueError(f"penalty must be None or >= 0, got {penalty!r}")
        super().__init__(members[0] if driver is None else driver, schema, device)
        self.members, self.sampling, self.penalty = members, sampling, penalty
        self._member_nets = [m.eval() if self.device.type == "cpu" else copy.deepcopy(m).to(self.device).eval()
                             for m in members]
        self._member_folded = [FoldedNet(m) for m in members] if self._folded is not None else None
        if sampling == "per_session":
            self._tracker_members = True
            if self._member_folded is not None:
                self._weights = FoldedNet.stack(self._member_folded)

    @property
    def num_members(self) -> int:
        return len(self.members)

    def reset_sessions(self, idx: np.ndarray) -> None:
        super().reset_sessions(idx)
        if self.sampling == "per_session":
            u = self.state.streams.side_uniform(idx, MEMBER_SALT)
            self.tracker.member[idx] = np.minimum((u * self.num_members).astype(np.int64), self.num_members - 1)

    def session_networks(self, rows: np.ndarray) -> list[tuple[BehaviorNet, np.ndarray]]:
        if self.sampling != "per_session":
            return super().session_networks(rows)
        member = self.tracker.member[rows]
        return [(self.members[m], np.flatnonzero(member == m)) for m in np.unique(member)]

    # ------------------------------------------------------------- forwards
    def member_forward(self, m: int, user, items, positions, channel):
        """Member ``m``'s probabilities on feature arrays (the compiled forward for small batches on CPU)."""
        n, k = items.shape[:2]
        if self._member_folded is not None and n * k <= KERNEL_MAX_ROWS:
            return self._member_folded[m](user, items, positions, channel)
        with torch.inference_mode():
            t = lambda a, dt=torch.float32: torch.as_tensor(a, dtype=dt, device=self.device)  # noqa: E731
            out = self._member_nets[m].inference(t(user), t(items), t(positions), t(channel, torch.int64))
            return tuple(o.double().cpu().numpy() for o in out)

    def predict(self, user, items, positions, channel, rows=None):
        if self.sampling != "per_session":
            return super().predict(user, items, positions, channel, rows)
        member = self.tracker.member if rows is None else self.tracker.member[rows]
        n, k = items.shape[:2]
        if self._member_folded is not None and n * k <= KERNEL_MAX_ROWS:
            return self._folded.run(np.ascontiguousarray(user, dtype=np.float32),
                                    np.ascontiguousarray(items, dtype=np.float32),
                                    np.asarray(positions, dtype=np.float64), np.asarray(channel, dtype=np.int64),
                                    weights=self._weights, member=np.ascontiguousarray(member, dtype=np.int64))
        out = (np.empty((n, k)), np.empty((n, k)), np.empty((n, k)), np.empty((n, 3)))
        for m in np.unique(member):
            sel = np.flatnonzero(member == m)
            for dst, src in zip(out, self.member_forward(int(m), user[sel], items[sel], positions, channel[sel])):
                dst[sel] = src
        return out

    def disagreement(self, every: list[tuple], items: np.ndarray, shown: np.ndarray) -> np.ndarray:
        """``(n,)`` standard deviation across members of the expected reward of showing ``items`` (``shown``
        marks the slots actually shown); ``every``: each member's ``(click, cart, purchase, leave)``."""
        kind = REWARDS[self.state.consts[5]]
        price = self.state.item_table.price[np.where(shown, items, 0)] if kind == "revenue" else None
        expected = []
        for click, cart, buy, _ in every:
            r = click if kind == "click" else click * cart * buy
            if price is not None:
                r = r * price
            expected.append((r * shown).sum(axis=1))
        return np.std(np.stack(expected), axis=0)

    def _fused_step(self, slots: np.ndarray, skip: np.ndarray, outcome: tuple) -> np.ndarray:
        """The base fused step; with a penalty, ``dnn_pre``, every member's forward and the driver's, ``dnn_post``,
        then the reward minus ``penalty * disagreement`` (skipped sessions: 0)."""
        if self.penalty is None:
            return super()._fused_step(slots, skip, outcome)
        st = self.state
        n, k = slots.shape
        obs = np.empty((n, st.layout.obs_dim), dtype=np.float32)
        session, portrait, rng, table, tables, tracker = self._bundles
        user = np.empty((n, len(self.tracker.user_names)), dtype=np.float32)
        itemf = np.empty((n, k, len(self.tracker.item_names)), dtype=np.float32)
        kernels.dnn_pre(skip, slots, session, portrait, table, tracker, st.consts, outcome, user, itemf)
        pos = self._positions.astype(np.float32)
        channel = st.portraits.channel
        # the driver's probabilities exactly as without the penalty (same forward, same batch): same outcomes
        probs = self.predict(user, itemf, pos, channel)
        every = [self.member_forward(m, user, itemf, pos, channel) for m in range(self.num_members)]
        items, flags, money = outcome[0], outcome[1], outcome[3]
        d = self.disagreement(every, items, flags[0])
        kernels.dnn_post(skip, probs, session, portrait, rng, table, tables, tracker, st.consts, outcome, obs)
        d[skip] = 0.0
        money[1] -= self.penalty * d
        self.extras = {"disagreement": d}
        return obs


def ensemble_model(sampling: str = "fixed", penalty: float | None = None, member: int | None = None,
                   path: str | None = None, device: str = "cpu") -> EnsembleBehaviorModel:
    """The ensemble shoppers the env options ask for (``EnvConfig``: ``shopper_sampling``,
    ``uncertainty_penalty``, ``ensemble_member``, ``ensemble``; ``path`` ``None``: the shipped ensemble)."""
    from ecomsim.shoppers.behavior import load_behavior_model

    members, card = load_ensemble(path)
    schema = card["feature_schema"]
    if member is not None and not 0 <= member < len(members):
        raise ValueError(f"ensemble_member must be in [0, {len(members) - 1}] (the ensemble has {len(members)} "
                         f"members), got {member}")
    driver = None
    if sampling == "fixed":
        if member is not None:
            driver = members[member]
        else:
            shipped = load_behavior_model(device="cpu")
            if shipped.schema["user"] != schema["user"] or shipped.schema["item"] != schema["item"]:
                raise ValueError("the behaviour ensemble's feature schema differs from the shipped model's; "
                                 "retrain one of them on the same features")
            driver = shipped.net
    return EnsembleBehaviorModel(members, schema, driver, sampling, penalty, device)
