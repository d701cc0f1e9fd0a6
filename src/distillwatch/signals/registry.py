"""The signal registry: an explicit map from stable ids to signal classes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from distillwatch.exceptions import DistillwatchConfigError
from distillwatch.plugins import lookup
from distillwatch.signals.base import Signal
from distillwatch.signals.builtin.elicitation import (
    CotElicitation,
    GradingElicitation,
    ToolTraceElicitation,
)
from distillwatch.signals.builtin.harvest import HarvestParams, TemplatedSweep
from distillwatch.signals.builtin.identity import FreshAccount, RiskySignup
from distillwatch.signals.builtin.network import AnonymisingNetwork, GeoMismatch, IpRotation

BUILTIN_SIGNALS: dict[str, type[Signal]] = {cls.NAME: cls for cls in (
    CotElicitation, GradingElicitation, ToolTraceElicitation, HarvestParams, TemplatedSweep,
    AnonymisingNetwork, IpRotation, GeoMismatch, RiskySignup, FreshAccount)}
FAMILIES = ("intent", "concealment")


class SignalRegistry:
    """Holds the signals of a scan; filters them by family and name.

    Example:
        >>> registry = SignalRegistry.default()
        >>> registry.remove("geo_mismatch")
        >>> "geo_mismatch" in registry.names()
        False
    """

    def __init__(self, signals: list[Signal] | None = None) -> None:
        self._signals: dict[str, Signal] = {}
        for signal in signals or []:
            self.add(signal)

    @classmethod
    def default(cls) -> SignalRegistry:
        """Every built-in signal with its default thresholds."""
        return cls([signal() for signal in BUILTIN_SIGNALS.values()])

    @classmethod
    def from_yaml(cls, path: Path) -> SignalRegistry:
        """Signals listed in a YAML file: ``signals: {name: {weight: w, low: x, ...}}``.

        Raises:
            DistillwatchConfigError: On an unknown signal or threshold, or a bad file.
        """
        try:
            data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as error:
            raise DistillwatchConfigError(f"Cannot read signals file: {error}",
                                          str(path)) from error
        if not isinstance(data, dict) or set(data) - {"signals"}:
            raise DistillwatchConfigError("A signals file has one key, 'signals'", str(path))
        registry = cls()
        for name, options in (data.get("signals") or {}).items():
            registry.add(lookup(BUILTIN_SIGNALS, name, "signal")(**(options or {})))
        return registry

    def add(self, signal: Signal) -> None:
        """Add (or replace) a signal.

        Raises:
            ValueError: If ``signal`` is not a Signal.
        """
        if not isinstance(signal, Signal):
            raise ValueError("Input is not of type Signal")
        self._signals[signal.NAME] = signal

    def remove(self, name: str) -> None:
        """Remove the signal ``name``.

        Raises:
            DistillwatchConfigError: If there is no such signal.
        """
        lookup(self._signals, name, "signal")
        del self._signals[name]

    def names(self) -> list[str]:
        return list(self._signals)

    def get_signals(self, family: str | None = None) -> list[Signal]:
        """The signals of ``family`` (all when None)."""
        return [s for s in self._signals.values() if family is None or family == s.FAMILY]
