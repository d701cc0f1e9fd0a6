"""Synchronised schedule: one orchestrator drives every account in lockstep waves."""

from __future__ import annotations

from distillwatch.simulate.plan import CampaignPlan
from distillwatch.simulate.tactics.base import Tactic


class SynchronizedSchedule(Tactic):
    NAME = "synchronized_schedule"
    DESCRIPTION = "All accounts send in the same time waves (a shared job scheduler)."
    DEFAULT_KNOBS = {"every_minutes": 20}

    def apply(self, plan: CampaignPlan) -> None:
        plan.synchronized_minutes = int(self.knobs["every_minutes"])
