"""Who the account says it is: sign-up path, verification, age (from the account file)."""

from __future__ import annotations

import numpy as np

from distillwatch.signals.base import Profile, Signal, column

# Programmes that hand out credits or higher limits on little proof: the paths abused by
# the public campaigns.
RISKY_CHANNELS = ("education", "startup_program", "research_program")


class RiskySignup(Signal):
    """Unverified accounts opened through lenient programmes (education / startup / research)."""

    NAME = "risky_signup"
    FAMILY = "concealment"
    DESCRIPTION = "unverified sign-up through a lenient programme"
    DEFAULT_WEIGHT = 0.5
    CAMPAIGN_EVIDENCE = False
    DEFAULT_THRESHOLDS = {"low": 0.0, "high": 1.0}

    def measure(self, profile: Profile, prior: float) -> np.ndarray:
        channel = np.asarray(profile["signup_channel"], dtype=object)
        verified = np.asarray(profile["verified"], dtype=object)
        risky = np.isin(channel, RISKY_CHANNELS)
        unverified = verified != True  # noqa: E712 - None (unknown) counts as unverified
        return np.where(risky & unverified, 1.0,
                        np.where(unverified & (channel == "self_serve"), 0.3, 0.0))

    def explain(self, value: float) -> str:
        return ("unverified account opened through an education / startup / research programme"
                if value >= 1.0 else "unverified self-serve account")


class FreshAccount(Signal):
    """Accounts that start sending within hours of being opened."""

    NAME = "fresh_account"
    FAMILY = "concealment"
    DESCRIPTION = "active within a day of sign-up"
    DEFAULT_WEIGHT = 0.3
    CAMPAIGN_EVIDENCE = False
    DEFAULT_THRESHOLDS = {"low": 0.0, "high": 1.0}

    def measure(self, profile: Profile, prior: float) -> np.ndarray:
        age = column(profile, "age_days_at_first_seen", fill=np.inf)
        return np.clip(1.0 - age, 0.0, 1.0)

    def explain(self, value: float) -> str:
        return f"first request {24 * (1 - value):.0f} hours after sign-up"
