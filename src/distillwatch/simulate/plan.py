"""What a campaign does, as tactics configure it: accounts, networks, content, pacing.

A :class:`CampaignPlan` starts as a plain scripted harvest (a few accounts on their own cloud
machines sending one frame at a flat rate); each tactic changes the parts it is about.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from distillwatch.simulate.clock import FLAT
from distillwatch.simulate.network import (
    COUNTRIES,
    AutonomousSystem,
    NetworkCatalogue,
    client,
    pick_country,
)


class NetworkStrategy:
    """Where a campaign's requests come from (default: one cloud machine per account)."""

    def prepare(self, rng: random.Random, catalogue: NetworkCatalogue) -> None:
        self._catalogue = catalogue
        self._machines: dict[str, tuple[AutonomousSystem, str]] = {}

    def client_for(self, rng: random.Random, account_id: str, user_agent: str) -> dict:
        if account_id not in self._machines:
            system = self._catalogue.pick(rng, "hosting")
            self._machines[account_id] = (system, system.address(rng))
        system, address = self._machines[account_id]
        return client(address, system, user_agent)


@dataclass
class ResidentialProxy(NetworkStrategy):
    """Rotating residential / mobile exits; IP intelligence flags a share of them as proxies."""

    pool_size: int = 2000
    flagged_share: float = 0.3
    countries: tuple[str, ...] = ()
    sticky_requests: int = 1
    ipv6_share: float = 0.0

    def prepare(self, rng: random.Random, catalogue: NetworkCatalogue) -> None:
        countries = self.countries or tuple(COUNTRIES)
        self._exits = []
        for _ in range(self.pool_size):
            country = pick_country(rng, countries)
            system = catalogue.pick(rng, rng.choice(("residential", "residential", "mobile")),
                                    country)
            flagged = rng.random() < self.flagged_share
            address: str | tuple[int, int] = system.address(rng)
            if self.ipv6_share > 0 and rng.random() < self.ipv6_share:
                # An IPv6 exit is a household's /64: every request from another address in it.
                address = (rng.randrange(1 << 16), rng.randrange(1 << 16))
            self._exits.append((system, address, "proxy" if flagged else None))
        self._sticky: dict[str, tuple[int, tuple]] = {}

    def client_for(self, rng: random.Random, account_id: str, user_agent: str) -> dict:
        left, exit_ = self._sticky.get(account_id, (0, None))
        if left <= 0 or exit_ is None:
            exit_, left = rng.choice(self._exits), self.sticky_requests
        self._sticky[account_id] = (left - 1, exit_)
        system, address, kind = exit_
        if not isinstance(address, str):
            address = system.address6(rng, *address)
        return client(address, system, user_agent, kind=kind)


@dataclass
class SharedHosting(NetworkStrategy):
    """A small farm of cloud machines that every account of the campaign uses (an IP cohort)."""

    addresses: int = 12
    providers: int = 2

    def prepare(self, rng: random.Random, catalogue: NetworkCatalogue) -> None:
        systems = [catalogue.pick(rng, "hosting") for _ in range(self.providers)]
        self._farm = []
        for i in range(self.addresses):
            system = systems[i % len(systems)]
            self._farm.append((system, system.address(rng, subnet=7 + i % 3)))

    def client_for(self, rng: random.Random, account_id: str, user_agent: str) -> dict:
        system, address = rng.choice(self._farm)
        return client(address, system, user_agent)


@dataclass
class VpnExits(NetworkStrategy):
    """Commercial VPN exits: many addresses in a few VPN networks."""

    pool_size: int = 300

    def prepare(self, rng: random.Random, catalogue: NetworkCatalogue) -> None:
        self._exits = []
        for _ in range(self.pool_size):
            system = catalogue.pick(rng, "vpn")
            self._exits.append((system, system.address(rng), pick_country(rng)))

    def client_for(self, rng: random.Random, account_id: str, user_agent: str) -> dict:
        system, address, country = rng.choice(self._exits)
        return client(address, system, user_agent, country=country)


@dataclass
class CampaignPlan:
    """Everything a campaign does; tactics edit it, the campaign population executes it."""

    # accounts and sign-up
    accounts: int = 10
    bursts: list[tuple[float, int]] = field(default_factory=list)  # (day offset, accounts)
    lifetime_days: float | None = None
    signup_channels: dict[str, float] = field(default_factory=lambda: {"self_serve": 1.0})
    billing_countries: tuple[str, ...] = ("US",)
    verified_share: float = 0.0
    tier: str = "tier-1"
    # payment
    payment_pool: int = 0            # 0: every account pays with its own instrument
    payment_share_prob: float = 0.0
    # network
    network: NetworkStrategy = field(default_factory=NetworkStrategy)
    user_agents: tuple[str, ...] = ("python-httpx/0.27.0",)
    # content
    capabilities: dict[str, float] = field(default_factory=lambda: {"writing": 1.0})
    elicitation: dict[str, float] = field(default_factory=lambda: {"plain": 1.0})
    templates_per_kind: int = 1
    template_rotation: str = "per_account"  # or "per_request"
    paraphrase: float = 0.0
    system_prompts: tuple[str | None, ...] = (None,)
    language: str = "en"              # "en" or "multi"
    coverage_partition: bool = False
    turns: tuple[int, int] = (1, 1)
    # harvest parameters
    n: tuple[int, ...] = (1,)
    max_tokens: tuple[int | None, ...] = (4096,)
    temperature: tuple[float | None, ...] = (0.7,)
    logprobs: bool = False
    top_logprobs: int | None = None
    reasoning_budget: int | None = None
    reply_chars: tuple[int, int] = (800, 4000)
    # pacing
    per_account_per_day: float = 60.0
    curve: tuple[float, ...] = FLAT
    curve_offset_hours: float | None = None  # None: per-account offset from billing country
    synchronized_minutes: int | None = None  # lockstep waves every N minutes
    gap_seconds: tuple[float, float] = (2.0, 30.0)
    # camouflage and pivots
    camouflage_share: float = 0.0
    model_pivot: bool = False
    pivot_boost: float = 1.0
