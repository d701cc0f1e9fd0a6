"""Signals: measured values, strengths, fits and the registry."""

from __future__ import annotations

import numpy as np
import pytest

from distillwatch.exceptions import DistillwatchConfigError
from distillwatch.signals import SignalRegistry
from distillwatch.signals.builtin.elicitation import CotElicitation
from distillwatch.signals.builtin.harvest import TemplatedSweep
from distillwatch.signals.builtin.identity import RiskySignup
from distillwatch.signals.builtin.network import IpRotation


def profile(**columns) -> dict[str, np.ndarray]:
    return {name: np.asarray(values, dtype=float if name not in (
        "signup_channel", "verified") else object) for name, values in columns.items()}


def test_rates_are_shrunk_for_accounts_with_few_exchanges():
    signal = CotElicitation()
    rows = profile(cot_rate=[1.0, 1.0, 0.0], reasoning_budget_rate=[0.0, 0.0, 0.0],
                   exchanges=[2, 200, 200])
    value, strength = signal.strength(rows, prior=8.0)
    assert value[0] == pytest.approx(0.2)
    assert value[1] == pytest.approx(200 / 208)
    assert strength[0] == 0.0 and strength[1] == 1.0 and strength[2] == 0.0
    # fit ignores the prior: a new head with two exchanges shows the behaviour fully
    assert signal.fit(rows)[0] == 1.0


def test_ip_rotation_counts_new_addresses_per_exchange():
    rows = profile(distinct_ips=[100, 1], exchanges=[100, 100])
    _, strength = IpRotation().strength(rows, prior=0.0)
    assert list(strength) == [1.0, 0.0]


def test_templated_sweep_needs_single_turn_distinct_tasks_and_a_shared_scaffold():
    rows = profile(single_turn_share=[1.0, 1.0, 0.2, 1.0],
                   distinct_prompt_share=[1.0, 0.3, 1.0, 1.0],
                   template_share=[0.9, 0.9, 0.9, 0.0], exchanges=[100, 100, 100, 100])
    _, strength = TemplatedSweep().strength(rows, prior=8.0)
    assert strength[0] == 1.0  # a harvest sweep
    assert strength[1] == 0.0  # an evaluation re-running fixed prompts
    assert strength[2] == 0.0  # conversations
    assert strength[3] == 0.0  # no shared scaffold


@pytest.mark.parametrize("channel, verified, value", [
    ("education", False, 1.0), ("startup_program", None, 1.0), ("education", True, 0.0),
    ("self_serve", False, 0.3), ("enterprise", False, 0.0), (None, None, 0.0)])
def test_risky_signup(channel, verified, value):
    rows = profile(signup_channel=[channel], verified=[verified])
    assert RiskySignup().measure(rows, 0.0)[0] == value


def test_registry_lookup_and_overrides():
    registry = SignalRegistry.default()
    assert "cot_elicitation" in registry.names()
    registry.remove("cot_elicitation")
    assert "cot_elicitation" not in registry.names()
    with pytest.raises(DistillwatchConfigError, match="Signal 'nope' not found"):
        registry.remove("nope")
    with pytest.raises(DistillwatchConfigError, match="has no threshold"):
        CotElicitation(medium=0.4)
    with pytest.raises(ValueError, match="not of type Signal"):
        registry.add(object())


def test_registry_from_yaml(tmp_path):
    path = tmp_path / "signals.yaml"
    path.write_text("signals:\n  cot_elicitation: {weight: 0.5, low: 0.2}\n  ip_rotation: {}\n")
    registry = SignalRegistry.from_yaml(path)
    assert registry.names() == ["cot_elicitation", "ip_rotation"]
    cot = registry.get_signals("intent")[0]
    assert cot.weight == 0.5 and cot.thresholds["low"] == 0.2
    path.write_text("signals:\n  mind_reading: {}\n")
    with pytest.raises(DistillwatchConfigError, match="mind_reading"):
        SignalRegistry.from_yaml(path)
