"""Where an account sends from: anonymising networks, rotating addresses, foreign exits."""

from __future__ import annotations

import numpy as np

from distillwatch.signals.base import Profile, RateSignal, Signal, column, shrunk


class AnonymisingNetwork(RateSignal):
    """Share of exchanges from proxy, VPN or Tor networks."""

    NAME = "anonymising_network"
    FAMILY = "concealment"
    DESCRIPTION = "traffic through proxy / VPN / Tor networks"
    DEFAULT_WEIGHT = 0.8
    DEFAULT_THRESHOLDS = {"low": 0.1, "high": 0.6}
    RATE_COLUMNS = ("anonymising_share",)
    EXPLAIN = "{value:.0%} of exchanges come through proxy, VPN or Tor networks"


class IpRotation(Signal):
    """Distinct client IPs per exchange: residential-proxy rotation gives nearly one each."""

    NAME = "ip_rotation"
    FAMILY = "concealment"
    DESCRIPTION = "a new client IP for most requests"
    DEFAULT_WEIGHT = 0.8

    def measure(self, profile: Profile, prior: float) -> np.ndarray:
        exchanges = column(profile, "exchanges")
        churn = column(profile, "distinct_ips") / np.maximum(exchanges, 1.0)
        return shrunk(churn, exchanges, prior)

    def explain(self, value: float) -> str:
        return f"{value:.0%} of exchanges come from an IP address the account had not used"


class GeoMismatch(RateSignal):
    """Share of exchanges sent from a country other than the billing country."""

    NAME = "geo_mismatch"
    FAMILY = "concealment"
    DESCRIPTION = "IP country differs from billing country"
    DEFAULT_WEIGHT = 0.4
    DEFAULT_THRESHOLDS = {"low": 0.4, "high": 0.9}
    RATE_COLUMNS = ("geo_mismatch_share",)
    EXPLAIN = "{value:.0%} of exchanges come from outside the billing country"
