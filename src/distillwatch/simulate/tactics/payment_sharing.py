"""Payment sharing: accounts pay with instruments drawn from a small shared pool."""

from __future__ import annotations

from distillwatch.simulate.plan import CampaignPlan
from distillwatch.simulate.tactics.base import Tactic


class PaymentSharing(Tactic):
    NAME = "payment_sharing"
    DESCRIPTION = "With some probability an account pays with one of a few shared instruments."
    DEFAULT_KNOBS = {"pool": 5, "probability": 0.4}

    def apply(self, plan: CampaignPlan) -> None:
        plan.payment_pool = int(self.knobs["pool"])
        plan.payment_share_prob = float(self.knobs["probability"])
