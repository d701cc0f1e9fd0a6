"""A bilingual writing team: a handful of colleagues writing and translating in two languages."""

from __future__ import annotations

from distillwatch.simulate.clock import OFFICE_DAY, DailyCurve, poisson
from distillwatch.simulate.events import EventSink
from distillwatch.simulate.network import COUNTRIES, country_offset
from distillwatch.simulate.populations.base import HomeNetwork, Population
from distillwatch.simulate.populations.chat import ChatParams, plan_session
from distillwatch.simulate.populations.ordinary import LANGUAGE_COUNTRIES
from distillwatch.simulate.text import Session, Turn

LANGUAGE_NAMES = {"zh": "Chinese", "ko": "Korean", "ja": "Japanese", "es": "Spanish",
                  "pt": "Portuguese", "fr": "French", "de": "German", "it": "Italian",
                  "ru": "Russian", "vi": "Vietnamese", "id": "Indonesian", "tr": "Turkish"}
TRANSLATE = ("Translate the following text into {language}. Keep the formatting, names and "
             "numbers unchanged.\n\n{text}")


class BilingualTeam(Population):
    """Colleagues of one company, on one office network, during office hours."""

    NAME = "bilingual_team"
    HEAVY = True
    DEFAULTS = {"accounts": 6, "sessions_per_day": 0.8, "translations_per_day": 6}

    def setup(self):
        rng, world = self.rng, self.world
        available = world.pools.languages("legit")
        candidates = {lang: n for lang, n in available.items() if lang in LANGUAGE_NAMES}
        self.language = max(sorted(candidates), key=candidates.get) if candidates else "es"
        country = LANGUAGE_COUNTRIES.get(self.language, ("ES",))[0]
        country = country if country in COUNTRIES else "ES"
        system = world.networks.pick(rng, "business", country)
        self._network = HomeNetwork(rng, system, 2, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
                                    "AppleWebKit/537.36 Chrome/139.0 Safari/537.36",
                                    same_subnet=True)
        self._curve = DailyCurve(OFFICE_DAY, country_offset(country))
        self.new_team(self.knobs["accounts"], country=country, signup_channel="self_serve",
                      email_domain="lumen-studio.com", tier="tier-2")
        return self.accounts

    def plan_day(self, day: int, sink: EventSink) -> None:
        world, rng = self.world, self.rng
        params = ChatParams(temperature=0.7, stream=True)
        for account in self.accounts:
            for _ in range(poisson(rng, self.knobs["sessions_per_day"])):
                session = world.pools.take_language("legit", self.language)
                if session is None:
                    break
                plan_session(world, sink, rng, account, session,
                             self._curve.sample(rng, world.window.day_start(day)),
                             client_for=lambda: self._network.client(rng, day),
                             model=world.models.for_legit(rng, day), params=params)
            for _ in range(poisson(rng, self.knobs["translations_per_day"])):
                source = world.pools.take("legit", "general")
                if source is None:
                    break
                language = LANGUAGE_NAMES.get(self.language, "Spanish")
                texts = [t.text for t in source.turns if t.role == "assistant"][:3]
                for text in texts:
                    session_like = TRANSLATE.format(language=language, text=text[:4000])
                    one = Session(source.session_id, (Turn("user", session_like),), "en")
                    plan_session(world, sink, rng, account, one,
                                 self._curve.sample(rng, world.window.day_start(day)),
                                 client_for=lambda: self._network.client(rng, day),
                                 model=world.models.for_legit(rng, day), params=params)
