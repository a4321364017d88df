"""The behaviour model's files: a ``state_dict`` (``.pt``, tensors only) and its card (``.json`` beside it).

The card holds the format (:data:`WEIGHTS_FORMAT`), the hidden width, the feature schema (its
version: :data:`FEATURE_VERSION` for the simulator's features, :data:`OBD_FEATURE_VERSION` for a
model of the Open Bandit Dataset's one-hot columns) and the weights' sha256. Loading checks all of
it and names the file in every error; a weights file that would run code is refused, never run.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import Any

from ecomsim.cards import check_file, check_state_dict, load_tensors, read_card, require_keys, save_tensors
from ecomsim.config import CHANNELS
from ecomsim.shoppers.network import BehaviorNet

FEATURE_VERSION = "ecomsim-behavior-features-v1"  # the simulator's features (SessionTracker's names)
OBD_FEATURE_VERSION = "ecomsim-obd-features-v1"  # OBD's one-hot columns (ecomsim.data.obd): scores OBD logs only
WEIGHTS_FORMAT = "ecomsim-behavior-v1"


def save_weights(net: BehaviorNet, weights_path: str | Path, card: dict[str, Any]) -> dict[str, Any]:
    """Write ``state_dict`` to ``weights_path`` and the card (with sha256) next to it as ``.json``."""
    return save_tensors(net.state_dict(), weights_path, dict(card, format=WEIGHTS_FORMAT))


def load_net(weights_path: str | Path) -> tuple[BehaviorNet, dict[str, Any]]:
    """Load a network and its card (``.json`` beside it), checking the format, keys, checksum and architecture.

    Every problem names the file: a missing or directory path, a card of another format, lacking a key
    (``hidden``, ``feature_schema``, ``sha256``) or whose ``feature_schema`` lacks one (``version``, ``user``,
    ``item``) or has an unknown version, weights whose sha256 differs from the card's, that are truncated, that
    hold anything but tensors (a pickle that would run code: refused, never run) or that do not fit the card.
    Both feature versions load (:data:`FEATURE_VERSION` and :data:`OBD_FEATURE_VERSION`); only the first
    drives the simulator (:func:`load_behavior_model`).
    """
    weights_path = Path(weights_path)
    card_path = weights_path.with_suffix(".json")
    what, where = "behaviour model weights", f"behaviour model card {str(card_path)!r}"
    for p in (weights_path, card_path):
        check_file(p, what if p is weights_path else "behaviour model card", fix="; build it with "
                   "`python scripts/train_behavior.py`")
    card = read_card(card_path, WEIGHTS_FORMAT, "behaviour model", required=("hidden", "feature_schema", "sha256"))
    schema, hidden = card["feature_schema"], card["hidden"]
    require_keys(schema if isinstance(schema, dict) else {}, ("version", "user", "item"), f"{where} feature_schema")
    if schema["version"] not in (FEATURE_VERSION, OBD_FEATURE_VERSION):
        raise ValueError(f"{where} has feature schema version {schema['version']!r}, expected {FEATURE_VERSION!r} (or "
                         f"{OBD_FEATURE_VERSION!r}, a model of OBD's features); retrain with `python scripts/train_behavior.py`")
    for key in ("user", "item"):
        if not isinstance(schema[key], list) or not schema[key] or not all(isinstance(n, str) for n in schema[key]):
            raise ValueError(f"{where} feature_schema[{key!r}] must be a non-empty list of names, got {schema[key]!r}")
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise ValueError(f"{where} hidden must be a positive integer (the layers' width), got {hidden!r}")
    data = weights_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != card["sha256"]:
        raise ValueError(f"{what} {str(weights_path)!r} have sha256 {digest}, but the card says {card['sha256']}; the "
                         "file is corrupt or does not belong to this card")
    state = check_state_dict(load_tensors(weights_path, what, data=data), weights_path, what)
    net = BehaviorNet(len(schema["user"]), len(schema["item"]), len(CHANNELS), hidden)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"behaviour model weights {str(weights_path)!r} do not fit the card's architecture: {exc}") from exc
    return net, card


def check_simulator_schema(schema: dict[str, Any], where: str) -> None:
    """``ValueError`` naming ``where`` unless the feature schema is the simulator's (:data:`FEATURE_VERSION`)."""
    if schema.get("version") == OBD_FEATURE_VERSION:
        raise ValueError(
            f"{where} was trained on Open Bandit Dataset features (feature schema version {OBD_FEATURE_VERSION!r}, "
            "one-hot columns of its card's obd_encoding): it scores OBD logs (ecomsim.data.obd.load_obd with that "
            f"encoding) but cannot drive the simulator, whose shoppers have {FEATURE_VERSION!r} features; use the "
            "shipped weights or weights trained on simulator logs (`python scripts/train_behavior.py`)"
        )


def shipped_weights_path() -> Path:
    """The shipped weights, ``ecomsim/assets/behavior.pt`` (built by ``scripts/train_behavior.py``)."""
    return Path(str(resources.files("ecomsim") / "assets" / "behavior.pt"))
