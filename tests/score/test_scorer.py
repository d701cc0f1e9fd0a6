"""The score needs intent and (concealment or coordination); checked as properties."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from distillwatch.score.scorer import (
    FamilyScores,
    SignalEvidence,
    campaign_confidence,
    noisy_or,
    solo_scores,
)

unit = st.floats(0.0, 1.0)


@given(st.lists(unit, min_size=1, max_size=6))
def test_noisy_or_is_at_least_the_strongest_and_at_most_one(values):
    combined = noisy_or([np.array([v]) for v in values])[0]
    assert max(values) - 1e-12 <= combined <= 1.0 + 1e-12


@given(unit, unit, st.floats(1, 10_000))
def test_solo_score_needs_both_intent_and_concealment(intent, concealment, exchanges):
    families = FamilyScores(np.array([intent, 0.0, intent]),
                            np.array([0.0, concealment, concealment]), SignalEvidence())
    score = solo_scores(families, np.array([exchanges] * 3))
    assert score[0] == 0.0 and score[1] == 0.0
    assert 0.0 <= score[2] <= min(intent, concealment) + 1e-12


def test_solo_score_needs_a_harvest_volume():
    families = FamilyScores(np.ones(3), np.ones(3), SignalEvidence())
    score = solo_scores(families, np.array([5.0, 100.0, 5000.0]))
    assert score[0] == 0.0 and 0.0 < score[1] < 1.0 and score[2] == 1.0


@given(st.floats(1, 1000), unit, unit)
def test_campaign_confidence_grows_with_each_input(accounts, intent, concealment):
    base = campaign_confidence(np.array([accounts]), np.array([intent]),
                               np.array([concealment]))[0]
    assert 0.0 <= base <= 1.0
    assert campaign_confidence(np.array([accounts + 5]), np.array([intent]),
                               np.array([concealment]))[0] >= base
    assert campaign_confidence(np.array([accounts]), np.array([min(1.0, intent + 0.1)]),
                               np.array([concealment]))[0] >= base


def test_coordination_without_intent_is_never_confident():
    assert campaign_confidence(np.array([1000.0]), np.array([0.0]), np.array([1.0]))[0] < 0.5
