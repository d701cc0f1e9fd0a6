"""Jailbreakers: other abuse, not distillation. Reported apart by the evaluator."""

from __future__ import annotations

from distillwatch.simulate.clock import DAY, HUMAN_DAY, DailyCurve, poisson
from distillwatch.simulate.events import EventSink
from distillwatch.simulate.network import client, pick_country
from distillwatch.simulate.populations.base import Population
from distillwatch.simulate.populations.chat import ChatParams, plan_session
from distillwatch.simulate.text import Session, Turn


class Jailbreakers(Population):
    """Accounts pasting DAN-style prompts from the internet, through VPNs and Tor."""

    NAME = "jailbreaker"
    LABEL = "other_abuse"
    DEFAULTS = {"accounts": 6, "attempts_per_day": 3.0}

    def setup(self):
        rng, world = self.rng, self.world
        self._profiles = []
        for _ in range(self.knobs["accounts"]):
            country = pick_country(rng)
            created = world.window.start + rng.uniform(-20, world.window.days - 2) * DAY
            account = self.new_account(country=country, signup_channel="self_serve",
                                       created_at=created, tier="free")
            curve = DailyCurve(HUMAN_DAY, rng.uniform(-8, 9))
            self._profiles.append((account, curve, rng.choice(("vpn", "tor"))))
        return self.accounts

    def plan_day(self, day: int, sink: EventSink) -> None:
        world, rng = self.world, self.rng
        jailbreaks = world.corpus.jailbreaks
        for account, curve, kind in self._profiles:
            start = curve.sample(rng, world.window.day_start(day))
            if start < account.created_at:
                continue
            for _ in range(poisson(rng, self.knobs["attempts_per_day"])):
                follow = world.pools.take("legit", "general")
                if follow is None:
                    return
                asks = tuple(Turn("user", t.text) for t in follow.turns if t.role == "user")[:2]
                session = Session(follow.session_id,
                                  (Turn("user", rng.choice(jailbreaks)), *asks), "en")
                system = world.networks.pick(rng, kind)

                def client_for(system=system):
                    return client(system.address(rng), system, "python-requests/2.32.3",
                                  country=pick_country(rng))

                start = plan_session(world, sink, rng, account, session, start,
                                     client_for=client_for, model=world.models.main,
                                     params=ChatParams(temperature=1.0))
