"""Errors for users' mistakes: did-you-mean hints and the range / choice checks every option goes through.

Every message names the field, the value received and what is valid, so a user can
fix the call without reading the source. Users' mistakes are ``ValueError`` or
``TypeError`` (a wrong type) whose message names the field; a missing file is
``FileNotFoundError`` and a directory where a file belongs ``IsADirectoryError``.
:class:`TrainingStopped` is not a mistake: a training loop that stopped early on
request (Ctrl-C, SIGTERM) after saving its checkpoint.
"""

from __future__ import annotations

import difflib
from typing import Any

import numpy as np


def suggest(name: str, valid: list[str] | tuple[str, ...]) -> str:
    """Return a ' Did you mean ...?' hint for a misspelt name, or ''."""
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_choice(field: str, value: Any, valid: tuple[str, ...]) -> None:
    """Raise ``ValueError`` naming ``field`` unless ``value`` is one of ``valid``."""
    if value not in valid:
        raise ValueError(f"{field} must be one of {list(valid)}, got {value!r}.{suggest(str(value), valid)}")


def check_range(field: str, value: Any, low: float, high: float | None, *, integer: bool = False) -> Any:
    """``value`` when ``low <= value <= high`` (an integer when ``integer``); else a ``TypeError`` / ``ValueError``
    naming ``field``.

    numpy scalars are accepted wherever Python numbers are (``np.int64(8)`` for an integer, ``np.float32(0.5)``
    for a number) and returned as the Python number (``int`` / ``float``), so configs stay JSON-friendly;
    ``bool`` is not a number here. ``high=None``: no upper bound.
    """
    kind = "an integer" if integer else "a number"
    span = f">= {low}" if high is None else f"in [{low}, {high}]"
    ok_type = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.integer, np.floating))
    if isinstance(value, (bool, np.bool_)) or not ok_type:
        raise TypeError(f"{field} must be {kind} {span}, got {value!r} ({type(value).__name__})")
    if isinstance(value, np.generic):
        value = value.item()
    if not (low <= value if high is None else low <= value <= high):
        raise ValueError(f"{field} must be {span}, got {value!r}")
    return value


class TrainingStopped(KeyboardInterrupt):
    """A training loop stopped early on request (its ``should_stop()`` turned true) after saving what it could.

    A ``KeyboardInterrupt``, so code that handles Ctrl-C handles it too.

    Attributes:
        checkpoint: the file to resume from (``None`` when the run had none to save).
        progress: how far it got, for people (``"304 of 1,024 steps"``, ``"epoch 3 of 30"``).
    """

    def __init__(self, checkpoint: Any, progress: str) -> None:
        super().__init__(f"stopped at {progress}" + (f"; checkpoint {checkpoint}" if checkpoint else ""))
        self.checkpoint, self.progress = checkpoint, progress
