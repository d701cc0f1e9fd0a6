"""Tool-trace elicitation: agentic tasks with tool schemas, asking for the whole trajectory."""

from __future__ import annotations

from distillwatch.simulate.plan import CampaignPlan
from distillwatch.simulate.tactics.base import Tactic
from distillwatch.simulate.tactics.cot_elicitation import _mix


class ToolTraceElicitation(Tactic):
    NAME = "tool_trace_elicitation"
    DESCRIPTION = "Agentic tasks sent with tools and frames that ask for the full trajectory."
    DEFAULT_KNOBS = {"share": 1.0}

    def apply(self, plan: CampaignPlan) -> None:
        plan.elicitation = _mix(plan.elicitation, "tool_trace", self.knobs["share"])
        plan.capabilities = _mix(plan.capabilities, "agentic_tool_use", self.knobs["share"])
