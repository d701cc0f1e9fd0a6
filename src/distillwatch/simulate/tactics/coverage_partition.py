"""Coverage partitioning: each account sweeps its own slice of the task space; no repeats."""

from __future__ import annotations

from distillwatch.simulate.plan import CampaignPlan
from distillwatch.simulate.tactics.base import Tactic


class CoveragePartition(Tactic):
    NAME = "coverage_partition"
    DESCRIPTION = "Disjoint task slices per account; no prompt is repeated anywhere."
    DEFAULT_KNOBS: dict = {}

    def apply(self, plan: CampaignPlan) -> None:
        plan.coverage_partition = True
