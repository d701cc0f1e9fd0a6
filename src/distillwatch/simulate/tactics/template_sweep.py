"""Template sweep: a few instruction frames around many tasks, rotated and paraphrased."""

from __future__ import annotations

from distillwatch.simulate.plan import CampaignPlan
from distillwatch.simulate.tactics.base import Tactic


class TemplateSweep(Tactic):
    NAME = "template_sweep"
    DESCRIPTION = "Prompts are built from a few frames, rotated per account or request."
    DEFAULT_KNOBS = {"templates": 2, "rotation": "per_request", "paraphrase": 0.0,
                     "system_prompt": None}

    def apply(self, plan: CampaignPlan) -> None:
        plan.templates_per_kind = int(self.knobs["templates"])
        plan.template_rotation = self.knobs["rotation"]
        plan.paraphrase = float(self.knobs["paraphrase"])
        if self.knobs["system_prompt"]:
            plan.system_prompts = (self.knobs["system_prompt"],)
