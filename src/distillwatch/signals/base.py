"""The signal plug-in contract.

Implementation of a signal:
    Subclass :class:`Signal`; set ``NAME`` (stable snake_case id, used in reports and STIX),
    ``VERSION``, ``FAMILY`` (``intent``: what the account is after; ``concealment``: how it
    hides), ``DESCRIPTION`` and ``DEFAULT_THRESHOLDS`` (``low``: where the strength starts to
    rise, ``high``: where it reaches 1, plus any others the signal reads). Implement
    ``measure(profile)``, the evidence value per account, and ``explain(value)``, the words a
    reviewer reads. Register the class in ``registry.BUILTIN_SIGNALS``.

Strength is a ramp of the measured value between ``low`` and ``high``, so every score can be
traced back to one number per signal and the thresholds it was judged against.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from distillwatch.plugins import check_options

Profile = dict[str, np.ndarray]


def ramp(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """0 below ``low``, 1 above ``high``, linear between."""
    return np.clip((np.asarray(values, dtype=float) - low) / (high - low), 0.0, 1.0)


def column(profile: Profile, name: str, fill: float = 0.0) -> np.ndarray:
    """A profile column as floats, with missing values replaced by ``fill``."""
    values = np.asarray(profile[name], dtype=float)
    return np.where(np.isnan(values), fill, values)


def shrunk(rate: np.ndarray, exchanges: np.ndarray, prior: float) -> np.ndarray:
    """A rate pulled towards 0 for accounts with few exchanges (``prior`` pseudo-exchanges)."""
    return rate * exchanges / (exchanges + prior)


class Signal(ABC):
    """One per-account detector.

    Args:
        weight: How much a full-strength finding moves the family's evidence (0-1).
        **thresholds: Overrides of ``DEFAULT_THRESHOLDS``.

    Raises:
        DistillwatchConfigError: On a threshold the signal does not have.
    """

    NAME: ClassVar[str]
    VERSION: ClassVar[str] = "1"
    FAMILY: ClassVar[str]
    DESCRIPTION: ClassVar[str]
    DEFAULT_WEIGHT: ClassVar[float] = 1.0
    DEFAULT_THRESHOLDS: ClassVar[dict[str, float]] = {"low": 0.3, "high": 0.8}
    SUPPORTED_STAGES: ClassVar[tuple[str, ...]] = ("score",)
    # Whether the signal's words describe a campaign's exchanges as a whole (rates do; a
    # statement about one account's sign-up does not).
    CAMPAIGN_EVIDENCE: ClassVar[bool] = True

    def __init__(self, weight: float | None = None, **thresholds: float) -> None:
        check_options("signal", self.NAME, thresholds, self.DEFAULT_THRESHOLDS,
                      word="threshold")
        self.weight = self.DEFAULT_WEIGHT if weight is None else float(weight)
        self.thresholds = {**self.DEFAULT_THRESHOLDS, **thresholds}

    def load(self) -> None:  # noqa: B027 - optional hook, most signals have no assets
        """Prepare heavy assets (none for the built-in signals)."""

    @abstractmethod
    def measure(self, profile: Profile, prior: float) -> np.ndarray:
        """The evidence value per account (same order as the profile's rows)."""

    def strength(self, profile: Profile, prior: float) -> tuple[np.ndarray, np.ndarray]:
        """(measured value, strength in [0, 1]) per account."""
        value = self.measure(profile, prior)
        return value, ramp(value, self.thresholds["low"], self.thresholds["high"])

    def campaign_strength(self, mean: np.ndarray) -> np.ndarray:
        """Strength of the exchange-weighted mean value over a whole cluster of accounts.

        A rate measured over many coordinated accounts is both precise and damning at a
        level that would be unremarkable in one account, so the ramp starts at half of
        ``low`` and is full at 0.6 of ``high``.
        """
        low, high = self.thresholds["low"], self.thresholds["high"]
        return ramp(mean, 0.5 * low, max(0.6 * high, 0.5 * low + 1e-9))

    def fit(self, profile: Profile) -> np.ndarray:
        """How clearly each account shows this behaviour itself, however few its exchanges.

        Used to decide whether an account linked to a campaign shares the campaign's
        signature behaviour (a new head with two exchanges does; an ordinary user who signed
        up the same hour behind the same residential /24 does not). On the cluster's scale
        (``campaign_strength``), without small-sample shrinkage.
        """
        return self.campaign_strength(self.measure(profile, 0.0))

    @abstractmethod
    def explain(self, value: float) -> str:
        """One line for a reviewer: the evidence in words and figures."""


class RateSignal(Signal):
    """A signal that is the (shrunk) share of exchanges with one property.

    Subclasses set ``RATE_COLUMNS`` (profile columns; the largest counts) and ``EXPLAIN`` (a
    format string with ``{value:.0%}``).
    """

    RATE_COLUMNS: ClassVar[tuple[str, ...]]
    EXPLAIN: ClassVar[str]

    def measure(self, profile: Profile, prior: float) -> np.ndarray:
        rate = np.maximum.reduce([column(profile, name) for name in self.RATE_COLUMNS])
        return shrunk(rate, column(profile, "exchanges"), prior)

    def explain(self, value: float) -> str:
        return self.EXPLAIN.format(value=value)
