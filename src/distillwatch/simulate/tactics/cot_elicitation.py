"""Chain-of-thought elicitation: frames that demand the full reasoning trace."""

from __future__ import annotations

from distillwatch.simulate.plan import CampaignPlan
from distillwatch.simulate.tactics.base import Tactic


class CotElicitation(Tactic):
    NAME = "cot_elicitation"
    DESCRIPTION = "Frames coerce a written-out reasoning trace; reasoning budget requested."
    DEFAULT_KNOBS = {"share": 1.0, "reasoning_budget": 8000}

    def apply(self, plan: CampaignPlan) -> None:
        plan.elicitation = _mix(plan.elicitation, "cot", self.knobs["share"])
        plan.reasoning_budget = self.knobs["reasoning_budget"] or None
        plan.reply_chars = (2500, 9000)


def _mix(current: dict[str, float], kind: str, share: float) -> dict[str, float]:
    """Give ``kind`` ``share`` of the exchanges, scaling the rest down."""
    rest = {k: v * (1 - share) for k, v in current.items() if k != kind and v > 0}
    return {kind: share, **{k: v for k, v in rest.items() if v > 0}}
