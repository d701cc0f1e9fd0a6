"""Camouflage: real users' conversations mixed into the harvest."""

from __future__ import annotations

from distillwatch.simulate.plan import CampaignPlan
from distillwatch.simulate.tactics.base import Tactic


class Camouflage(Tactic):
    NAME = "camouflage"
    DESCRIPTION = "A share of each account's traffic is ordinary multi-turn conversation."
    DEFAULT_KNOBS = {"share": 0.3}

    def apply(self, plan: CampaignPlan) -> None:
        plan.camouflage_share = float(self.knobs["share"])
