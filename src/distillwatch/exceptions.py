"""Errors raised by distillwatch.

Every error descends from :class:`DistillwatchError` and says what went wrong, where
(``source``: a file and line, a stage and table) and, where the user can fix it, how.
"""

from __future__ import annotations


class DistillwatchError(ValueError):
    """Root of all distillwatch errors.

    Args:
        message: What went wrong and, where possible, what to do next.
        source: Where it went wrong, e.g. ``"world/labels.json"`` or ``"exchanges.jsonl.gz:12"``.
    """

    def __init__(self, message: str, source: str | None = None) -> None:
        self.message = message
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.source:
            return f"{self.message} (in {self.source})"
        return self.message


class DistillwatchConfigError(DistillwatchError):
    """A settings, preset, policy or tactic configuration is invalid."""


class DistillwatchInputError(DistillwatchError):
    """An input file (logs, world, scan output) is missing or malformed."""


class DistillwatchDataError(DistillwatchError):
    """A real-text source package cannot be obtained or read."""


class DistillwatchEngineError(DistillwatchError):
    """A query failed in the engine; the message carries the SQL that failed."""
