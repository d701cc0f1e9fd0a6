"""Each tactic changes the part of the campaign plan it is about, and only with valid knobs."""

from __future__ import annotations

import random

import pytest

from distillwatch.exceptions import DistillwatchConfigError
from distillwatch.simulate.clock import HUMAN_DAY
from distillwatch.simulate.plan import CampaignPlan, ResidentialProxy, SharedHosting, VpnExits
from distillwatch.simulate.tactics import TACTICS, get_tactic

# tactic id, knobs, check on the plan after apply
CASES = [
    ("hydra_cluster", {"bursts": 3, "lifetime_days": 4.0},
     lambda p: len(p.bursts) == 3 and sum(n for _, n in p.bursts) == p.accounts
     and p.lifetime_days == 4.0 and "education" in p.signup_channels),
    ("proxy_rotation", {"pool_size": 50}, lambda p: isinstance(p.network, ResidentialProxy)
     and p.network.pool_size == 50 and len(p.user_agents) > 1),
    ("shared_hosting", {"addresses": 4}, lambda p: isinstance(p.network, SharedHosting)),
    ("vpn_exits", {}, lambda p: isinstance(p.network, VpnExits)),
    ("payment_sharing", {"pool": 3, "probability": 0.5},
     lambda p: p.payment_pool == 3 and p.payment_share_prob == 0.5),
    ("template_sweep", {"templates": 4, "paraphrase": 0.5},
     lambda p: p.templates_per_kind == 4 and p.paraphrase == 0.5),
    ("cot_elicitation", {}, lambda p: p.elicitation == {"cot": 1.0} and p.reasoning_budget),
    ("tool_trace_elicitation", {},
     lambda p: p.elicitation.get("tool_trace") == 1.0
     and p.capabilities == {"agentic_tool_use": 1.0}),
    ("grading_elicitation", {}, lambda p: p.capabilities == {"grading": 1.0}),
    ("harvest_params", {"n": [8], "logprobs": True},
     lambda p: p.n == (8,) and p.logprobs is True),
    ("coverage_partition", {}, lambda p: p.coverage_partition),
    ("low_and_slow", {"per_day": 5.0}, lambda p: p.per_account_per_day == 5.0
     and p.curve == HUMAN_DAY),
    ("synchronized_schedule", {"every_minutes": 15}, lambda p: p.synchronized_minutes == 15),
    ("camouflage", {"share": 0.25}, lambda p: p.camouflage_share == 0.25),
    ("model_pivot", {}, lambda p: p.model_pivot and p.pivot_boost > 1),
    ("multilingual", {}, lambda p: p.language == "multi"),
]


def test_every_registered_tactic_has_a_case():
    assert {name for name, _, _ in CASES} == set(TACTICS)


@pytest.mark.parametrize("name, knobs, check", CASES, ids=[c[0] for c in CASES])
def test_tactic_changes_the_plan(name, knobs, check):
    untouched = CampaignPlan(accounts=30)
    assert not check(untouched)
    plan = CampaignPlan(accounts=30)
    get_tactic(name)(random.Random(1), **knobs).apply(plan)
    assert check(plan)


def test_unknown_knob_names_the_tactic_and_the_known_knobs():
    with pytest.raises(DistillwatchConfigError, match="hydra_cluster.*bursts"):
        get_tactic("hydra_cluster")(random.Random(1), burts=3)


def test_unknown_tactic_lists_the_known_ones():
    with pytest.raises(DistillwatchConfigError, match="'sybil' not found.*camouflage"):
        get_tactic("sybil")
