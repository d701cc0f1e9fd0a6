"""Low and slow: few requests per account, on a human-looking daily curve."""

from __future__ import annotations

from distillwatch.simulate.clock import HUMAN_DAY
from distillwatch.simulate.plan import CampaignPlan
from distillwatch.simulate.tactics.base import Tactic


class LowAndSlow(Tactic):
    NAME = "low_and_slow"
    DESCRIPTION = "Per-account volume kept under limits, with a human daily rhythm."
    DEFAULT_KNOBS = {"per_day": 12.0, "gap_seconds": (40.0, 900.0)}

    def apply(self, plan: CampaignPlan) -> None:
        plan.per_account_per_day = float(self.knobs["per_day"])
        plan.curve = HUMAN_DAY
        plan.curve_offset_hours = None
        plan.gap_seconds = tuple(self.knobs["gap_seconds"])
