"""Signals and clusters -> account scores, campaign confidences and their evidence.

Two questions decide whether an account takes part in distillation, and the score needs a yes
to both: *intent* (it harvests reasoning traces, grades, tool traces or sweeps a task space)
and *concealment or coordination* (it hides behind anonymising networks and lenient sign-ups,
or it is one of many accounts run together). A model-evaluation vendor has the intent but
neither of the others; a jailbreaker hides but harvests nothing; both stay unflagged.

Per account (``solo``):  intent x concealment x volume, each in [0, 1].
Per cluster (``confidence``): coordination x (0.35 + 0.65 intent x volume) x (0.6 + 0.4
concealment), with intent and concealment measured over the cluster's exchanges as a whole.
An account in a reported campaign scores at least its campaign's confidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from distillwatch.signals import SignalRegistry
from distillwatch.signals.base import Profile, ramp

# Solo flags need a harvest's volume: a student asking for step-by-step answers on a VPN
# sends tens of prompts, a harvest hundreds.
SOLO_VOLUME = (20.0, 300.0)
# Coordination grows with the number of linked accounts: 2 could be a household, 10 is a ring.
COORDINATION_ACCOUNTS = (2.0, 10.0)
# A harvest needs volume: a team's hundred translation requests a month are not one.
CAMPAIGN_VOLUME = (100.0, 2000.0)
INTENT_FLOOR, CONCEALMENT_FLOOR = 0.35, 0.6


def noisy_or(strengths: list[np.ndarray]) -> np.ndarray:
    """1 - prod(1 - s): the chance that at least one piece of evidence holds."""
    if not strengths:
        return np.zeros(0)
    out = np.ones_like(strengths[0])
    for strength in strengths:
        out = out * (1.0 - np.clip(strength, 0.0, 1.0))
    return 1.0 - out


@dataclass
class SignalEvidence:
    """What each signal measured and concluded for every account (rows as in the profile)."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    strengths: dict[str, np.ndarray] = field(default_factory=dict)

    def reasons(self, row: int, floor: float = 0.3) -> list[str]:
        """Names of the signals at or above ``floor`` for one account, strongest first."""
        found = [(s[row], name) for name, s in self.strengths.items() if s[row] >= floor]
        return [name for _, name in sorted(found, reverse=True)]


@dataclass
class FamilyScores:
    """Intent and concealment per row, and the signal evidence behind them."""

    intent: np.ndarray
    concealment: np.ndarray
    evidence: SignalEvidence


def family_scores(profile: Profile, registry: SignalRegistry, prior: float) -> FamilyScores:
    """Run every signal over a profile table (accounts, or campaigns as wholes)."""
    evidence = SignalEvidence()
    weighted: dict[str, list[np.ndarray]] = {"intent": [], "concealment": []}
    for signal in registry.get_signals():
        value, strength = signal.strength(profile, prior)
        evidence.values[signal.NAME] = value
        evidence.strengths[signal.NAME] = strength
        weighted[signal.FAMILY].append(signal.weight * strength)
    rows = len(next(iter(profile.values())))
    zeros = np.zeros(rows)
    return FamilyScores(
        intent=noisy_or(weighted["intent"]) if weighted["intent"] else zeros,
        concealment=noisy_or(weighted["concealment"]) if weighted["concealment"] else zeros,
        evidence=evidence)


def solo_scores(families: FamilyScores, exchanges: np.ndarray) -> np.ndarray:
    """Account scores from the account's own behaviour alone."""
    volume = ramp(np.log10(np.maximum(exchanges, 1.0)), *np.log10(SOLO_VOLUME))
    return families.intent * families.concealment * volume


def campaign_confidence(accounts: np.ndarray, intent: np.ndarray, concealment: np.ndarray,
                        exchanges: np.ndarray | None = None) -> np.ndarray:
    """Confidence that each cluster is a distillation campaign (see the module docstring).

    Args:
        accounts: Linked accounts per cluster.
        intent: The cluster's intent evidence in [0, 1].
        concealment: The cluster's concealment evidence in [0, 1].
        exchanges: The cluster's exchanges; intent counts in full from 2,000 (log ramp from
            100). Omitted: full volume.
    """
    coordination = ramp(accounts, *COORDINATION_ACCOUNTS)
    if exchanges is not None:
        intent = intent * ramp(np.log10(np.maximum(exchanges, 1.0)),
                               *np.log10(CAMPAIGN_VOLUME))
    return (coordination * (INTENT_FLOOR + (1 - INTENT_FLOOR) * intent)
            * (CONCEALMENT_FLOOR + (1 - CONCEALMENT_FLOOR) * concealment))


def to_profile(table: pa.Table) -> Profile:
    """Columns of an Arrow table as numpy arrays (objects for text and booleans)."""
    out: Profile = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
            out[name] = column.to_numpy(zero_copy_only=False).astype(float)
        else:
            out[name] = np.asarray(column.to_pylist(), dtype=object)
    return out
