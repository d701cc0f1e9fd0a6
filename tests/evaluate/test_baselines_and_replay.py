"""The baselines flag exactly the accounts their rule names; replay times detection exactly."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tinyworld import build_world, exchange

from distillwatch.evaluate import load_labels, load_scan_output
from distillwatch.evaluate.replay import replay
from distillwatch.evaluate.scanners import get_scanner
from distillwatch.exceptions import DistillwatchConfigError

COT = "Solve it. Let's think step by step."


@pytest.fixture
def world(tmp_path):
    accounts = {
        "heavy": ("legit", "support_bot", None, True),
        "cot12": ("attack", "campaign", "C1", False),
        "cot5": ("attack", "campaign", "C1", False),
        "plain": ("legit", "ordinary", None, False),
        "parts": ("attack", "campaign", "C2", False),
    }
    records = [exchange("heavy", i * 0.08) for i in range(300)]            # 300 in one day
    records += [exchange("cot12", i, COT if i < 10 else "hi") for i in range(12)]
    records += [exchange("cot5", i, COT) for i in range(5)]                # too few to judge
    records += [exchange("plain", i) for i in range(20)]
    # Anthropic-style content parts and an explicit reasoning request both count.
    records += [exchange("parts", i, [{"type": "text", "text": "think it through"}])
                for i in range(6)]
    records += [exchange("parts", 10 + i, "x", reasoning={"enabled": True}) for i in range(6)]
    return build_world(tmp_path / "w", accounts, records)


def _flagged(world, tmp_path, name, **params):
    get_scanner(name, **params).scan(world, tmp_path / name)
    return load_scan_output(tmp_path / name).flagged()


def test_volume_baseline_flags_accounts_over_the_threshold(world, tmp_path):
    assert _flagged(world, tmp_path, "volume_baseline") == {"heavy"}
    assert _flagged(world, tmp_path, "volume_baseline", threshold="15") == {"heavy", "plain"}


def test_cot_rate_baseline_needs_enough_exchanges(world, tmp_path):
    assert _flagged(world, tmp_path, "cot_rate_baseline") == {"cot12", "parts"}
    scan = load_scan_output(tmp_path / "cot_rate_baseline")
    assert scan.accounts["cot12"].score == pytest.approx(10 / 12)
    assert scan.accounts["cot5"].decision == "allow"


def test_unknown_scanner_and_bad_parameters(world):
    with pytest.raises(DistillwatchConfigError, match="'magic' not found.*volume_baseline"):
        get_scanner("magic")
    with pytest.raises(DistillwatchConfigError, match="no parameter.*treshold"):
        get_scanner("volume_baseline", treshold=3)
    with pytest.raises(DistillwatchConfigError, match="threshold='lots' is not a float"):
        get_scanner("volume_baseline", threshold="lots")


def test_replay_reports_exchanges_sent_before_first_detection(tmp_path):
    accounts = {
        "a1": ("attack", "campaign", "C1", False),   # 24 a day from day 0
        "a2": ("attack", "campaign", "C1", False),   # joins on day 2
        "b1": ("attack", "campaign", "C2", False),   # 5 a day: never caught
        "o1": ("legit", "ordinary", None, False),
    }
    records = [exchange("a1", h + 0.5) for h in range(72)]
    records += [exchange("a2", 48 + h + 0.5) for h in range(24)]
    records += [exchange("b1", d * 24 + h) for d in range(3) for h in range(5)]
    records += [exchange("o1", d * 24 + 9) for d in range(3)]
    world = build_world(tmp_path / "w", accounts, records)
    labels = load_labels(world)
    steps = []
    found = replay(world, labels, get_scanner("volume_baseline", threshold=20), timedelta(days=1),
                   progress=lambda done, total: steps.append((done, total)))
    by_id = {d.campaign_id: d for d in found}
    # At the first cutoff (end of day 0) a1 has sent 24 and is flagged; a2 has not started.
    assert by_id["C1"].detected and by_id["C1"].exchanges_before == 24
    assert by_id["C1"].detected_at.startswith("2026-04-21T00:00")
    assert not by_id["C2"].detected and by_id["C2"].exchanges_before == 15
    assert steps[-1] == (3, 3)
