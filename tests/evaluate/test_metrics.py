"""Metrics on a tiny world, checked against values worked out by hand."""

from __future__ import annotations

import pytest
from tinyworld import write_scan

from distillwatch.evaluate import evaluate, load_labels, load_scan_output

SCORES = {"a1": 0.9, "a2": 0.8, "a3": 0.4, "b1": 0.7, "b2": 0.1, "o1": 0.6, "o2": 0.05,
          "s1": 0.95, "j1": 0.9, "zz": 0.5}  # o3 missing from the scan; zz unknown to the world
DECISIONS = {"b1": "block", "j1": "block", "o1": "verify"}


@pytest.fixture
def result(tiny_world, tmp_path):
    scan = write_scan(
        tmp_path / "scan",
        campaigns=[{"campaign_id": "X", "confidence": 0.9, "accounts": ["a1", "a2", "s1"]}],
        accounts=[{"account_id": a, "score": s, "decision": DECISIONS.get(a, "allow"),
                   "campaign_id": "X" if a in ("a1", "a2", "s1") else None}
                  for a, s in SCORES.items()])
    return evaluate(load_labels(tiny_world), load_scan_output(scan))


def test_campaign_recall_counts_half_flagged_as_found(result):
    # C1: a1, a2 in the reported campaign (2/3); C2: b1 blocked (1/2, exactly half).
    assert result.campaign_recall == 1.0
    by_id = {c.campaign_id: c for c in result.campaigns}
    assert by_id["C1"].flagged_accounts == 2 and by_id["C1"].reported_as == {"X": 2}
    assert by_id["C2"].flagged_share == 0.5 and by_id["C2"].reported_as == {}


def test_precision_recall_leave_other_abuse_out(result):
    # flagged attack: a1 a2 b1; flagged legit: s1 o1; j1 is other abuse and not counted.
    assert result.account_precision == pytest.approx(3 / 5)
    assert result.account_recall == pytest.approx(3 / 5)
    assert result.other_abuse_flagged_rate == 1.0


def test_false_positive_rate_per_population_heavy_first(result):
    assert [(p.population, p.heavy, p.flagged, p.accounts) for p in result.populations] == [
        ("support_bot", True, 1, 1), ("ordinary", False, 1, 3)]
    assert result.legit_fpr == pytest.approx(2 / 4)
    assert result.heavy_fpr == 1.0


def test_exchange_coverage_weights_accounts_by_exchanges(result):
    assert result.exchange_coverage == pytest.approx((10 + 10 + 5) / 50)


def test_pr_auc_matches_the_hand_computed_average_precision(result):
    # Ranking: s1(F) a1(T) a2(T) b1(T) o1(F) a3(T) b2(T) o2(F) o3(F, missing -> 0).
    expected = (1 / 2 + 2 / 3 + 3 / 4 + 4 / 6 + 5 / 7) / 5
    assert result.pr_auc == pytest.approx(expected)


def test_missing_and_unknown_accounts_are_counted(result):
    assert result.accounts_missing_from_scan == 1
    assert result.unknown_accounts == 1


def test_an_empty_scan_finds_nothing_and_flags_no_one(tiny_world, tmp_path):
    scan = write_scan(tmp_path / "empty", campaigns=[], accounts=[])
    result = evaluate(load_labels(tiny_world), load_scan_output(scan))
    assert result.campaign_recall == 0.0 and result.legit_fpr == 0.0
    assert result.account_precision != result.account_precision  # NaN: nothing flagged
    assert result.to_dict()["account_precision"] is None
