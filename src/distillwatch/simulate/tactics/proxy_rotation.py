"""Residential-proxy rotation: every request from another household's address (on an IPv6
exit, from another address of the household's /64: ``ipv6_share``)."""

from __future__ import annotations

from distillwatch.simulate.network import API_CLIENT_AGENTS
from distillwatch.simulate.plan import CampaignPlan, ResidentialProxy
from distillwatch.simulate.tactics.base import Tactic


class ProxyRotation(Tactic):
    NAME = "proxy_rotation"
    DESCRIPTION = "Requests rotate through a pool of residential/mobile proxy exits."
    DEFAULT_KNOBS = {"pool_size": 3000, "flagged_share": 0.3, "countries": (),
                     "sticky_requests": 1, "rotate_user_agents": True, "ipv6_share": 0.0}

    def apply(self, plan: CampaignPlan) -> None:
        plan.network = ResidentialProxy(
            pool_size=self.knobs["pool_size"], flagged_share=self.knobs["flagged_share"],
            countries=tuple(self.knobs["countries"]),
            sticky_requests=self.knobs["sticky_requests"], ipv6_share=self.knobs["ipv6_share"])
        if self.knobs["rotate_user_agents"]:
            plan.user_agents = API_CLIENT_AGENTS
