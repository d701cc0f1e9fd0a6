"""A startup's engineers on the company's internal assistant: a hydra in every way but intent.

A hard negative for the identity and scaffold links together: the accounts sign up in one
burst inside the window (the company's onboarding day), self-serve and unverified, in one
organisation paying with one card; they send from the office's NAT addresses and from the
company's cloud VPN egress (a hosting network); every request carries the internal
assistant's system prompt and tools with extended thinking switched on. What they send is
their own work: real multi-turn conversations about code and everything else, in office
hours, each engineer at their own pace.
"""

from __future__ import annotations

from distillwatch.simulate.clock import DAY, HOUR, OFFICE_DAY, DailyCurve, poisson
from distillwatch.simulate.events import EventSink
from distillwatch.simulate.network import country_offset
from distillwatch.simulate.populations.base import Population, ServiceNetwork
from distillwatch.simulate.populations.chat import ChatParams, plan_session

SYSTEM = (
    "You are Quill, Northwind Robotics' internal engineering assistant. Answer engineers' "
    "questions about code, infrastructure and anything else they ask. Think carefully before "
    "you answer. Use the tools to look things up in the company wiki and tickets when the "
    "question is about Northwind's own systems; never invent internal facts. Be concise."
)
TOOLS = [
    {"type": "function", "function": {
        "name": "search_wiki", "description": "Search Northwind's engineering wiki.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}},
                       "required": ["query"]}}},
    {"type": "function", "function": {
        "name": "get_ticket", "description": "Read a ticket from the issue tracker.",
        "parameters": {"type": "object", "properties": {"key": {"type": "string"}},
                       "required": ["key"]}}},
]
BROWSER = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/537.36 Chrome/139.0 "
           "Safari/537.36 quill-web/2.4")


class StartupTeam(Population):
    """One company's engineers, onboarded together, on the company's internal assistant."""

    NAME = "startup_team"
    HEAVY = True
    DEFAULTS = {"accounts": 40, "onboard_day": 1, "sessions_per_day": 1.5, "code_share": 0.6,
                "vpn_share": 0.4, "reasoning_budget": 4000, "country": "US"}

    def setup(self):
        rng, world, knobs = self.rng, self.world, self.knobs
        country = knobs["country"]
        self._office = ServiceNetwork(rng, world.networks.pick(rng, "business", country), 2,
                                      BROWSER)
        self._vpn = ServiceNetwork(rng, world.networks.pick(rng, "hosting"), 3, BROWSER)
        self._curve = DailyCurve(OFFICE_DAY, country_offset(country))
        organization, payment = world.ids.organization(), world.ids.payment()
        onboarding = world.window.day_start(knobs["onboard_day"]) + 10 * HOUR
        # Each engineer has a pace of their own.
        self._pace: dict[str, float] = {}
        for _ in range(knobs["accounts"]):
            account = self.new_account(country=country, signup_channel="self_serve",
                             created_at=onboarding + rng.uniform(0, 2 * HOUR),
                             organization_id=organization, payment=payment,
                             email_domain="northwind-robotics.com", tier="tier-2")
            self._pace[account.account_id] = knobs["sessions_per_day"] * rng.uniform(0.3, 1.7)
        # The company joins late in the window, when the shared pools of real conversations
        # may have run dry: its engineers' conversations are set aside now.
        days = max(0, world.window.days - knobs["onboard_day"])
        wanted = round(knobs["accounts"] * knobs["sessions_per_day"] * days * 1.2)
        self._sessions = []
        for _ in range(wanted):
            kind = "code" if rng.random() < knobs["code_share"] else "general"
            session = world.pools.take("legit", kind) or world.pools.take_any(
                "legit", ("code", "general"), rng)
            if session is None:
                break
            self._sessions.append(session)
        self._params = ChatParams(system=SYSTEM, tools=TOOLS, temperature=1.0, stream=True,
                                  reasoning_budget=knobs["reasoning_budget"])
        return self.accounts

    def _client(self, day: int) -> dict:
        network = self._vpn if self.rng.random() < self.knobs["vpn_share"] else self._office
        return network.client(self.rng, day)

    def plan_day(self, day: int, sink: EventSink) -> None:
        world, rng = self.world, self.rng
        start = world.window.day_start(day)
        for account in self.accounts:
            if account.created_at >= start + DAY:
                continue  # nobody works before they have an account
            for _ in range(poisson(rng, self._pace[account.account_id])):
                if not self._sessions:
                    return
                session = self._sessions.pop()
                begin = max(self._curve.sample(rng, start), account.created_at + 0.5 * HOUR)
                if begin >= start + DAY + 6 * HOUR:
                    continue
                plan_session(world, sink, rng, account, session, begin,
                             client_for=lambda: self._client(day),
                             model=world.models.for_legit(rng, day), params=self._params)
