"""Decision policies: first matching rule decides; bad policies are errors naming the spot."""

from __future__ import annotations

import pytest

from distillwatch.exceptions import DistillwatchConfigError
from distillwatch.score.policy import AccountFacts, Policy


def facts(score=0.0, in_campaign=False, confidence=0.0, channel=None, verified=None,
          exchanges=100) -> AccountFacts:
    return AccountFacts(score, in_campaign, confidence, channel, verified, exchanges)


@pytest.mark.parametrize("account, decision", [
    (facts(0.1), "allow"),
    (facts(0.35), "monitor"),
    (facts(0.55), "throttle"),
    (facts(0.9), "block"),
    (facts(0.65, channel="education"), "verify"),
    (facts(0.99, in_campaign=True, confidence=0.95), "block"),
    (facts(0.99, in_campaign=True, confidence=0.95, channel="startup_program"), "verify"),
    (facts(0.6, in_campaign=True, confidence=0.6), "throttle"),
    (facts(0.99, in_campaign=True, confidence=0.99, verified=True), "throttle"),
])
def test_builtin_policy_decisions(account, decision):
    assert Policy.builtin().decide(account)[0] == decision


def test_first_matching_rule_wins_and_is_named():
    policy = Policy.from_dict({"default": "monitor", "rules": [
        {"name": "a", "when": {"score_at_least": 0.5}, "decision": "block"},
        {"name": "b", "when": {"score_at_least": 0.1}, "decision": "throttle"}]})
    assert policy.decide(facts(0.7)) == ("block", "a")
    assert policy.decide(facts(0.2)) == ("throttle", "b")
    assert policy.decide(facts(0.0)) == ("monitor", "default")


@pytest.mark.parametrize("data, message", [
    ({"rules": [{"when": {"score_over": 0.5}, "decision": "block"}]},
     "unknown condition 'score_over'"),
    ({"rules": [{"when": {"score_at_least": 0.5}, "decision": "ban"}]},
     "decision must be one of"),
    ({"rules": [{"when": {"score_at_least": "high"}, "decision": "block"}]},
     "takes a float"),
    ({"rules": [], "extra": 1}, "A policy is a mapping"),
    ({"rules": [{"when": {}, "decision": "block", "why": "x"}]}, "a rule has keys"),
])
def test_invalid_policies_are_errors(data, message):
    with pytest.raises(DistillwatchConfigError, match=message):
        Policy.from_dict(data, "my-policy.yaml")


def test_policy_file_errors_name_the_file(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("rules: [ {when: {score_at_least: 0.5}, decision: nuke} ]")
    with pytest.raises(DistillwatchConfigError, match="policy.yaml"):
        Policy.from_path(path)
    with pytest.raises(DistillwatchConfigError, match="does not point to a valid file"):
        Policy.from_path(tmp_path / "missing.yaml")
