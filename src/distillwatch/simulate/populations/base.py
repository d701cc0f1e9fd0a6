"""The population plug-in contract: a kind of account and the traffic it sends.

Implementation of a population:
    Subclass :class:`Population`, set ``NAME`` (a stable snake_case id), ``LABEL``
    (``legit`` / ``other_abuse``), ``HEAVY`` (True for the hard negatives) and ``DEFAULTS``
    (every knob with its default). ``setup()`` creates the accounts; ``plan_day(day, sink)``
    adds that day's events. Register the class in ``populations/registry.py``.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from distillwatch.plugins import check_options
from distillwatch.simulate.accounts import (
    CONSUMER_EMAIL_DOMAINS,
    EDU_EMAIL_DOMAINS,
    Account,
)
from distillwatch.simulate.clock import DAY
from distillwatch.simulate.context import WorldContext
from distillwatch.simulate.events import EventSink
from distillwatch.simulate.network import AutonomousSystem, client


class Population(ABC):
    """A kind of account in the world.

    Args:
        world: The shared world context.
        **knobs: Overrides of ``DEFAULTS``; an unknown knob is an error.

    Raises:
        DistillwatchConfigError: On an unknown knob.
    """

    NAME: ClassVar[str]
    LABEL: ClassVar[str] = "legit"
    HEAVY: ClassVar[bool] = False
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init__(self, world: WorldContext, **knobs: Any) -> None:
        check_options("population", self.NAME, knobs, self.DEFAULTS)
        self.world = world
        self.knobs: dict[str, Any] = {**self.DEFAULTS, **knobs}
        self.rng = world.rng("population", self.NAME)
        self.accounts: list[Account] = []

    @abstractmethod
    def setup(self) -> list[Account]:
        """Create this population's accounts (called once, before any day)."""

    @abstractmethod
    def plan_day(self, day: int, sink: EventSink) -> None:
        """Add the events this population sends on ``day`` (they may spill past midnight)."""

    def new_account(
        self,
        *,
        country: str,
        signup_channel: str,
        created_at: float | None = None,
        organization_id: str | None = None,
        payment: str | None = None,
        email_domain: str | None = None,
        verified: bool = False,
        tier: str = "tier-1",
        keys: int = 1,
        label: str | None = None,
        population: str | None = None,
    ) -> Account:
        """Make, remember and return one account with sensible defaults."""
        world, rng = self.world, self.rng
        if created_at is None:
            created_at = world.window.start - rng.uniform(5, 700) * DAY
        if email_domain is None:
            pool: Sequence[str] = (
                EDU_EMAIL_DOMAINS if signup_channel == "education" else CONSUMER_EMAIL_DOMAINS
            )
            email_domain = rng.choice(pool)
        account = Account(
            account_id=world.ids.account(),
            population=population or self.NAME,
            label=label or self.LABEL,
            created_at=created_at,
            signup_channel=signup_channel,
            billing_country=country,
            payment_fingerprint=payment or world.ids.payment(),
            email_domain=email_domain,
            verified=verified,
            tier=tier,
            country=country,
            organization_id=organization_id,
            api_keys=tuple(world.ids.key() for _ in range(keys)),
        )
        self.accounts.append(account)
        return account

    def new_team(self, count: int, *, country: str, email_domain: str, tier: str,
                 signup_channel: str = "enterprise", **fields: Any) -> list[Account]:
        """``count`` verified accounts of one organisation, paying with one instrument."""
        organization, payment = self.world.ids.organization(), self.world.ids.payment()
        return [
            self.new_account(country=country, signup_channel=signup_channel,
                             organization_id=organization, payment=payment,
                             email_domain=email_domain, verified=True, tier=tier, **fields)
            for _ in range(count)
        ]


class HomeNetwork:
    """The few addresses one person or office uses, with occasional churn (DHCP, travel).

    Args:
        rng: Random stream.
        system: The AS of the connection.
        addresses: How many addresses over the window.
        user_agent: The client software.
    """

    def __init__(
        self,
        rng: random.Random,
        system: AutonomousSystem,
        addresses: int,
        user_agent: str,
        same_subnet: bool = False,
        ipv6: bool = False,
    ) -> None:
        subnet = rng.randrange(256)
        self.system = system
        self.user_agent = user_agent
        self.addresses = [
            system.address(rng, subnet if same_subnet or i % 2 == 0 else None)
            for i in range(max(1, addresses))
        ]
        # On IPv6 each period's connection is a /64, and the device picks a new (temporary)
        # address in it every day, and now and then another one.
        self.networks6 = ([(rng.randrange(1 << 16), rng.randrange(1 << 16))
                           for _ in self.addresses] if ipv6 else None)

    def client(self, rng: random.Random, day: int) -> dict:
        """The client object of one request on ``day``."""
        # Mostly the address of the current period; sometimes another one (phone, café).
        index = min(day * len(self.addresses) // 31, len(self.addresses) - 1)
        if rng.random() < 0.1:
            index = rng.randrange(len(self.addresses))
        if self.networks6 is None:
            return client(self.addresses[index], self.system, self.user_agent)
        site, subnet = self.networks6[index]
        seed = (site, subnet, day, rng.random() < 0.2 and rng.randrange(1 << 30))
        address = self.system.address6(random.Random(repr(seed)), site, subnet)
        return client(address, self.system, self.user_agent)




def weighted(rng: random.Random, options: dict[str, float]) -> str:
    """One key of ``options``, drawn in proportion to its value."""
    total = sum(options.values())
    draw = rng.random() * total
    for name, weight in options.items():
        draw -= weight
        if draw < 0:
            return name
    return name


class ServiceNetwork(HomeNetwork):
    """A company's egress: a few NAT addresses in one /24, used in rotation."""

    def __init__(
        self, rng: random.Random, system: AutonomousSystem, addresses: int, user_agent: str
    ) -> None:
        super().__init__(rng, system, addresses, user_agent, same_subnet=True)

    def client(self, rng: random.Random, day: int) -> dict:
        return client(rng.choice(self.addresses), self.system, self.user_agent)
