"""Cards: the JSON files that ship beside weights (format, sha256, schema, metrics at training time).

Every reader here names the file and the problem: a directory where a file is
expected, text that is not UTF-8 or not JSON, a card of another format or missing a
key, weights whose checksum differs from the card's, weights that are truncated or
that hold anything but tensors (a pickle that would run code when loaded is refused,
never executed: ``torch.load(..., weights_only=True)``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any, Iterable


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_file(path: str | Path, what: str, expected: str = "a file", fix: str = "") -> Path:
    """``path`` as a ``Path`` when it names an existing file; else an error saying what it is instead.

    Args:
        path: the path to check.
        what: names the file in errors (``"catalog file"``, ...).
        expected: what should be there, said when ``path`` is a directory.
        fix: appended to both messages (e.g. ``"; build it with scripts/train_gan.py"``).

    Raises:
        FileNotFoundError: nothing at ``path``.
        IsADirectoryError: ``path`` is a directory (a ``FileNotFoundError`` would call it missing).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{what} {str(path)!r} is a directory; expected {expected}{fix}")
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist{fix}")
    return path


def read_json(path: str | Path, what: str) -> Any:
    """The JSON value of a UTF-8 text file; errors name the file, the line and the problem."""
    path = check_file(path, what)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} {str(path)!r} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                         f"{exc.start}); expected a JSON file") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} {str(path)!r} is not valid JSON: {exc}") from None


def read_card(path: str | Path, expected_format: str, what: str, required: Iterable[str] = ()) -> dict[str, Any]:
    """Read a card, checking it is a JSON object of the expected format holding the ``required`` keys.

    Args:
        path: the card (``.json``).
        expected_format: the value its ``format`` key must have.
        what: names the artefact in errors (``"generator"``, ``"agent"``, ...).
        required: keys the card must hold besides ``format``.
    """
    card = read_json(path, f"{what} card")
    if not isinstance(card, dict) or card.get("format") != expected_format:
        found = card.get("format") if isinstance(card, dict) else type(card).__name__
        raise ValueError(f"{what} card {str(path)!r} has format {found!r}, expected {expected_format!r}")
    require_keys(card, required, f"{what} card {str(path)!r}")
    return card


def require_keys(mapping: dict[str, Any], keys: Iterable[str], where: str) -> None:
    """``ValueError`` naming ``where`` and every key of ``keys`` that ``mapping`` lacks."""
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise ValueError(f"{where} lacks keys {missing}; it has {sorted(mapping)}")


def check_sha256(path: str | Path, expected: Any, what: str, fix: str) -> str:
    """The file's sha256, or a ``ValueError`` when it differs from ``expected`` (the card's)."""
    digest = sha256_file(path)
    if digest != expected:
        shown = f"{expected[:12]}..." if isinstance(expected, str) else repr(expected)
        raise ValueError(f"{what} {str(path)!r} has sha256 {digest[:12]}..., the card expects {shown}: the file is "
                         f"corrupted or from another build; {fix}")
    return digest


def load_tensors(path: str | Path, what: str, map_location: Any = "cpu", data: bytes | None = None) -> Any:
    """``torch.load(path, weights_only=True)`` with errors that name the file and the problem.

    Args:
        path: the weights file (named in errors; read unless ``data`` is given).
        what: names the artefact in errors.
        map_location: torch's ``map_location``.
        data: the file's bytes when the caller already read them (to hash them).

    Raises:
        ValueError: the file holds objects other than tensors and plain containers (a pickle
            that would run code: refused, nothing executed), or is truncated / not a torch file.
    """
    import torch

    source: Any = io.BytesIO(data) if data is not None else check_file(path, what)
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of files it then refuses anyway
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"WeightsUnpickler error:\s*(.*?)\s*(?:Check the documentation|$)", str(exc), re.S)
        detail = " ".join(found.group(1).split()) if found else type(exc).__name__
        raise ValueError(f"{what} {str(path)!r} holds objects other than tensors (a pickle that could run code when "
                         f"loaded), refused without running it ({detail})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, KeyError, OSError) as exc:
        raise ValueError(f"{what} {str(path)!r} is not a readable torch weights file (truncated or corrupted?): "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None


def check_state_dict(state: Any, path: str | Path, what: str) -> dict[str, Any]:
    """``state`` when it is a ``{name: tensor}`` mapping; else a ``ValueError`` naming the file."""
    import torch

    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ValueError(f"{what} {str(path)!r} does not hold a state_dict ({{name: tensor}}), got {type(state).__name__}")
    return state


def save_tensors(state: dict[str, Any], path: str | Path, card: dict[str, Any]) -> dict[str, Any]:
    """Write ``state`` (tensors) to ``path`` with ``torch.save`` and ``card`` plus the file's ``sha256`` beside it
    as ``.json`` (sorted keys); returns the card written. Read back with :func:`read_card` and :func:`load_tensors`."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    path.write_bytes(data)
    card = dict(card, sha256=hashlib.sha256(data).hexdigest())
    path.with_suffix(".json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return card


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``: a crash leaves the old file or the new one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path
