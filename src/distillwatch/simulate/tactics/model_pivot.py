"""Model pivot: switch to a new model the day it is released, and push harder."""

from __future__ import annotations

from distillwatch.simulate.plan import CampaignPlan
from distillwatch.simulate.tactics.base import Tactic


class ModelPivot(Tactic):
    NAME = "model_pivot"
    DESCRIPTION = "All traffic moves to a newly released model on its release day."
    DEFAULT_KNOBS = {"boost": 1.8}

    def apply(self, plan: CampaignPlan) -> None:
        plan.model_pivot = True
        plan.pivot_boost = float(self.knobs["boost"])
