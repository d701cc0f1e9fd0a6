"""Per-account detector plug-ins: each signal turns profile columns into a strength and words."""

from distillwatch.signals.base import Signal
from distillwatch.signals.registry import SignalRegistry

__all__ = ["Signal", "SignalRegistry"]
