"""Grading elicitation: reward-model style judgements of (question, response) pairs."""

from __future__ import annotations

from distillwatch.simulate.plan import CampaignPlan
from distillwatch.simulate.tactics.base import Tactic
from distillwatch.simulate.tactics.cot_elicitation import _mix


class GradingElicitation(Tactic):
    NAME = "grading_elicitation"
    DESCRIPTION = "Requests to grade responses with a critique, as a reward model would."
    DEFAULT_KNOBS = {"share": 1.0}

    def apply(self, plan: CampaignPlan) -> None:
        plan.elicitation = _mix(plan.elicitation, "grading", self.knobs["share"])
        plan.capabilities = _mix(plan.capabilities, "grading", self.knobs["share"])
        plan.reply_chars = (600, 2500)
