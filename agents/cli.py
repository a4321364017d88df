"""What the command-line scripts share: bad input ends in one line and exit status 2, not a traceback."""

from __future__ import annotations

import sys
from typing import Callable


def run(main: Callable[[], int]) -> None:
    """Exit with ``main()``'s status; a ``ValueError``, ``FileNotFoundError`` or ``TypeError`` (bad options,
    files or weights, whose messages name the field, value and what was expected) prints ``error: ...`` and exits 2."""
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
