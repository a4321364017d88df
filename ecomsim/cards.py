"""Cards: the JSON files that ship beside weights (format, sha256, schema, metrics at training time)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_card(path: str | Path, expected_format: str, what: str) -> dict[str, Any]:
    """Read a card, checking it is JSON of the expected format; ``what`` names the artefact in errors."""
    path = Path(path)
    try:
        card = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} card {str(path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(card, dict) or card.get("format") != expected_format:
        found = card.get("format") if isinstance(card, dict) else type(card).__name__
        raise ValueError(f"{what} card {str(path)!r} has format {found!r}, expected {expected_format!r}")
    return card
