"""Shared rules of the plug-in registries (populations, tactics, scanners).

A registry is a plain dict from a stable snake_case id to a class. A failed lookup names what
was asked for and what exists; unknown options are errors, never ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from distillwatch.exceptions import DistillwatchConfigError

T = TypeVar("T")


def lookup(registry: Mapping[str, T], name: str, kind: str) -> T:
    """``registry[name]``, or an error listing the known ids.

    Raises:
        DistillwatchConfigError: ``"<Kind> '<name>' not found; known <kind>s: ..."``.
    """
    try:
        return registry[name]
    except KeyError:
        raise DistillwatchConfigError(
            f"{kind.capitalize()} '{name}' not found; known {kind}s: "
            f"{', '.join(sorted(registry))}"
        ) from None


def check_options(kind: str, name: str, given: Iterable[str], known: Iterable[str],
                  word: str = "knob", source: str | None = None) -> None:
    """Refuse options a plug-in does not have.

    Raises:
        DistillwatchConfigError: Naming the plug-in, the unknown options and the known ones.
    """
    known = sorted(known)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise DistillwatchConfigError(
            f"{kind.capitalize()} '{name}' has no {word}(s) {', '.join(unknown)}; "
            f"known: {', '.join(known) or 'none'}", source)
