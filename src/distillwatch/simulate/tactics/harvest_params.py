"""Harvest parameters: several samples per prompt, long outputs, log-probabilities."""

from __future__ import annotations

from distillwatch.simulate.plan import CampaignPlan
from distillwatch.simulate.tactics.base import Tactic


class HarvestParams(Tactic):
    NAME = "harvest_params"
    DESCRIPTION = "n > 1, saturated max_tokens and/or logprobs on every request."
    DEFAULT_KNOBS = {"n": (4,), "max_tokens": (16000,), "logprobs": False,
                     "top_logprobs": None, "temperature": (1.0,)}

    def apply(self, plan: CampaignPlan) -> None:
        plan.n = tuple(self.knobs["n"])
        plan.max_tokens = tuple(self.knobs["max_tokens"])
        plan.logprobs = bool(self.knobs["logprobs"])
        plan.top_logprobs = self.knobs["top_logprobs"]
        plan.temperature = tuple(self.knobs["temperature"])
