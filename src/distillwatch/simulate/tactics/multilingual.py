"""Multilingual: non-English tasks and frames, to slip past English-only classifiers."""

from __future__ import annotations

from distillwatch.simulate.plan import CampaignPlan
from distillwatch.simulate.tactics.base import Tactic


class Multilingual(Tactic):
    NAME = "multilingual"
    DESCRIPTION = "Tasks and frames in languages other than English."
    DEFAULT_KNOBS: dict = {}

    def apply(self, plan: CampaignPlan) -> None:
        plan.language = "multi"
