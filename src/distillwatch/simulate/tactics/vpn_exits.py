"""VPN exits: commercial VPN addresses, many countries, few networks."""

from __future__ import annotations

from distillwatch.simulate.plan import CampaignPlan, VpnExits
from distillwatch.simulate.tactics.base import Tactic


class VpnExitRotation(Tactic):
    NAME = "vpn_exits"
    DESCRIPTION = "Requests come through commercial VPN exits."
    DEFAULT_KNOBS = {"pool_size": 300}

    def apply(self, plan: CampaignPlan) -> None:
        plan.network = VpnExits(pool_size=self.knobs["pool_size"])
