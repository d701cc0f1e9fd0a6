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


def test_an_external_program_can_be_replayed_as_a_scanner(tmp_path):
    """The command scanner runs a program per cutoff; here one that flags a1 once it exists."""
    import sys

    program = tmp_path / "tool.py"
    program.write_text(
        "import json, sys, gzip\n"
        "world, out, until = sys.argv[1:4]\n"
        "seen = {json.loads(l)['account_id'] for l in gzip.open(world + '/exchanges.jsonl.gz')\n"
        "        if not until or json.loads(l)['timestamp'][:19] < until[:19]}\n"
        "import pathlib; p = pathlib.Path(out); p.mkdir(parents=True, exist_ok=True)\n"
        "(p / 'campaigns.json').write_text(json.dumps({'schema_version': '1', 'campaigns': []}))\n"
        "(p / 'accounts.jsonl').write_text(''.join(json.dumps({'account_id': a, 'score': 1.0,\n"
        "    'decision': 'block' if a == 'a1' else 'allow'}) + '\\n' for a in seen))\n")
    accounts = {"a1": ("attack", "campaign", "C1", False), "o1": ("legit", "ordinary", None, False)}
    records = [exchange("a1", 30 + h) for h in range(5)] + [exchange("o1", h) for h in range(3)]
    world = build_world(tmp_path / "w", accounts, records)
    scanner = get_scanner("command", command=f"{sys.executable} {program} {{world}} {{out}} "
                                             "{until}")
    found = replay(world, load_labels(world), scanner, timedelta(days=1))
    assert found[0].detected_at.startswith("2026-04-22")   # a1 starts on day 1
    assert found[0].detected and found[0].exchanges_before == 5  # all sent on day 1


def test_command_scanner_reports_a_failing_program(tmp_path, world):
    import sys

    scanner = get_scanner("command", command=f"{sys.executable} -c 'import sys; "
                          "sys.exit(\"boom\")' {world} {out}")
    from distillwatch.exceptions import DistillwatchInputError

    with pytest.raises(DistillwatchInputError, match="exited with 1: boom"):
        scanner.scan(world, tmp_path / "o")
    with pytest.raises(DistillwatchConfigError, match="needs command"):
        get_scanner("command", command="tool --no-placeholders")
