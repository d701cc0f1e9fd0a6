"""Ordinary users: real people, real multi-turn conversations, daily rhythms."""

from __future__ import annotations

from distillwatch.simulate.clock import DAY, HUMAN_DAY, DailyCurve, is_weekend
from distillwatch.simulate.events import EventSink
from distillwatch.simulate.network import API_CLIENT_AGENTS, country_offset, pick_country
from distillwatch.simulate.populations.base import HomeNetwork, Population, weighted
from distillwatch.simulate.populations.chat import ChatParams, plan_session

# Countries whose users write in a language other than English, by ISO 639-1 code.
LANGUAGE_COUNTRIES = {
    "zh": ("CN", "HK", "SG"), "ko": ("KR",), "ja": ("JP",), "es": ("ES", "MX"),
    "pt": ("BR",), "fr": ("FR",), "de": ("DE",), "it": ("IT",), "ru": ("UA",),
    "uk": ("UA",), "vi": ("VN",), "id": ("ID",), "tr": ("TR",), "pl": ("PL",), "nl": ("NL",),
}
PERSONAL_SYSTEM_PROMPTS = (
    "You are a helpful assistant.",
    "You are a concise assistant. Answer briefly.",
    "You are ChatGPT, a large language model. Answer as concisely as possible.",
    "Always answer in Markdown.",
)


class OrdinaryUsers(Population):
    """People using the API through their own scripts, notebooks and chat front ends."""

    NAME = "ordinary"
    DEFAULTS = {
        "accounts": 500,
        "sessions_mean": 2.2,          # conversations per account over the window
        "new_account_share": 0.15,     # accounts created during the window
        "kinds": {"general": 0.62, "foreign": 0.23, "code": 0.15},
        "ipv6_share": 0.0,             # households and phones on IPv6 (temporary addresses)
    }

    def setup(self):
        rng, world = self.rng, self.world
        self._plans: dict[int, list] = {}
        for _ in range(self.knobs["accounts"]):
            kinds = self.knobs["kinds"]
            sessions = []
            n_sessions = max(1, int(rng.expovariate(1 / self.knobs["sessions_mean"]) + 0.5))
            for _ in range(n_sessions):
                session = world.pools.take_any("legit", [weighted(rng, kinds)], rng)
                if session is None:
                    session = world.pools.take_any("legit", ("general", "foreign"), rng)
                if session is not None:
                    sessions.append(session)
            if not sessions:
                break
            language = sessions[0].language
            country = (
                rng.choice(LANGUAGE_COUNTRIES[language])
                if language in LANGUAGE_COUNTRIES else pick_country(rng, ("US", "GB", "CA",
                "AU", "IN", "NG", "KE", "SG", "DE", "NL"))
            )
            new = rng.random() < self.knobs["new_account_share"]
            created = (
                world.window.start + rng.uniform(0, world.window.days - 1) * DAY
                if new else None
            )
            account = self.new_account(
                country=country,
                signup_channel=weighted(rng, {"self_serve": 0.8, "education": 0.12,
                                              "startup_program": 0.04, "unknown": 0.04}),
                created_at=created,
                verified=rng.random() < 0.3,
                tier=weighted(rng, {"free": 0.5, "tier-1": 0.4, "tier-2": 0.1}),
            )
            kind = weighted(rng, {"residential": 0.65, "mobile": 0.2, "business": 0.1,
                                  "education": 0.05})
            system = world.networks.pick(rng, kind, country)
            ipv6 = self.knobs["ipv6_share"] > 0 and rng.random() < self.knobs["ipv6_share"]
            network = HomeNetwork(rng, system, rng.randint(1, 3), rng.choice(API_CLIENT_AGENTS),
                                  ipv6=ipv6)
            curve = DailyCurve(HUMAN_DAY, country_offset(country) + rng.uniform(-1, 1))
            params = ChatParams(
                system=rng.choice(PERSONAL_SYSTEM_PROMPTS) if rng.random() < 0.15 else None,
                temperature=rng.choice((None, None, 0.7, 1.0, 0.2)),
                max_tokens=rng.choice((None, None, 1024, 2048, 4096)),
                stream=rng.random() < 0.55,
                operation="messages" if rng.random() < 0.2 else "chat",
            )
            first_day = max(0, int((account.created_at - world.window.start) // DAY))
            for session in sessions:
                day = rng.randint(first_day, world.window.days - 1)
                if is_weekend(world.window.day_start(day)) and rng.random() < 0.3:
                    day = rng.randint(first_day, world.window.days - 1)
                self._plans.setdefault(day, []).append(
                    (account, session, network, curve, params)
                )
        return self.accounts

    def plan_day(self, day: int, sink: EventSink) -> None:
        world, rng = self.world, self.rng
        for account, session, network, curve, params in self._plans.pop(day, ()):
            start = curve.sample(rng, world.window.day_start(day))
            start = max(start, account.created_at + 60)
            plan_session(
                world, sink, rng, account, session, start,
                client_for=lambda network=network, day=day: network.client(rng, day),
                model=world.models.for_legit(rng, day), params=params,
            )
