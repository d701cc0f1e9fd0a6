"""Hydra cluster: many accounts opened in bursts through lenient sign-up paths, replaced as
they are banned or burnt."""

from __future__ import annotations

from distillwatch.simulate.plan import CampaignPlan
from distillwatch.simulate.tactics.base import Tactic


class HydraCluster(Tactic):
    NAME = "hydra_cluster"
    DESCRIPTION = "Accounts created in bursts through education/startup/research sign-ups."
    DEFAULT_KNOBS = {
        "bursts": 4,
        "lifetime_days": 10.0,
        "channels": {"education": 0.5, "startup_program": 0.3, "research_program": 0.2},
        "billing_countries": ("US", "SG", "GB", "HK"),
    }

    def apply(self, plan: CampaignPlan) -> None:
        bursts = max(1, int(self.knobs["bursts"]))
        per_burst, extra = divmod(plan.accounts, bursts)
        # The first burst is in place before the window opens; the others replace lost heads.
        plan.bursts = [
            (-1.0 if i == 0 else i * self.knobs["lifetime_days"] * 0.8 + self.rng.uniform(0, 1),
             per_burst + (1 if i < extra else 0))
            for i in range(bursts)
        ]
        plan.lifetime_days = self.knobs["lifetime_days"]
        plan.signup_channels = dict(self.knobs["channels"])
        plan.billing_countries = tuple(self.knobs["billing_countries"])
