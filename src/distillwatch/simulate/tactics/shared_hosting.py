"""Shared hosting: every account of the campaign sends from the same small cloud farm."""

from __future__ import annotations

from distillwatch.simulate.plan import CampaignPlan, SharedHosting
from distillwatch.simulate.tactics.base import Tactic


class SharedHostingFarm(Tactic):
    NAME = "shared_hosting"
    DESCRIPTION = "All accounts use one small set of cloud addresses (an IP cohort)."
    DEFAULT_KNOBS = {"addresses": 12, "providers": 2}

    def apply(self, plan: CampaignPlan) -> None:
        plan.network = SharedHosting(addresses=self.knobs["addresses"],
                                     providers=self.knobs["providers"])
