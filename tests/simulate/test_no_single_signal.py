"""No simple signal separates every campaign from every legitimate heavy user.

For each signal, a threshold that flagged at least half the accounts of every campaign (the
campaign-recall rule) would have to sit at or below the lowest campaign median; the test asserts
that some heavy-user account reaches that value, so any such threshold blocks a good customer.
"""

from __future__ import annotations

import pytest

from distillwatch.evaluate import load_labels
from distillwatch.evaluate.difficulty import SIGNALS, separability, simple_signals


@pytest.fixture(scope="module")
def results(ci_world):
    return {r.signal: r for r in separability(load_labels(ci_world), simple_signals(ci_world))}


@pytest.mark.parametrize("signal", SIGNALS)
def test_no_threshold_on_one_signal_catches_every_campaign_without_a_heavy_user(results,
                                                                                 signal):
    result = results[signal]
    assert not result.separable, (
        f"{signal}: a threshold in ({result.highest_heavy_user:.3f}, "
        f"{result.lowest_campaign_median:.3f}] catches every campaign and no heavy user")


def test_separability_detects_a_separable_signal():
    """The check itself can fail: a signal where campaigns sit above every heavy user."""
    from datetime import UTC, datetime

    from distillwatch.evaluate.labels import (
        AccountLabel,
        CampaignLabel,
        PopulationLabel,
        WorldLabels,
    )

    now = datetime(2026, 4, 20, tzinfo=UTC)
    labels = WorldLabels(
        (now, now),
        {"a": AccountLabel("attack", "campaign", "C", 1, now),
         "h": AccountLabel("legit", "support_bot", None, 1, now)},
        {"C": CampaignLabel("c", (), ("a",), 1)},
        {"campaign": PopulationLabel("attack", False, 1),
         "support_bot": PopulationLabel("legit", True, 1)})
    table = {"a": dict.fromkeys(SIGNALS, 0.9), "h": dict.fromkeys(SIGNALS, 0.1)}
    assert all(r.separable for r in separability(labels, table))
