"""Deterministic ordering of records, so that a seeded simulator gets the same world every time."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"(\d+)")


def natural_key(identifier: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders ``"HumanEval/2"`` before ``"HumanEval/10"``.

    Args:
        identifier: Any id.

    Returns:
        A tuple comparing digit runs as numbers and everything else as text.

    Example:
        >>> sorted(["t10", "t2"], key=natural_key)
        ['t2', 't10']
    """
    return tuple((0, int(part)) if part.isdigit() else (1, part)
                 for part in _DIGITS.split(identifier) if part)
