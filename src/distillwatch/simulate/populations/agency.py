"""A content agency: copywriters filling a few natural templates with clients' briefs."""

from __future__ import annotations

from distillwatch.simulate.clock import OFFICE_DAY, DailyCurve, is_weekend, poisson
from distillwatch.simulate.events import EventSink
from distillwatch.simulate.exchange import build_exchange
from distillwatch.simulate.network import country_offset
from distillwatch.simulate.populations.base import HomeNetwork, Population

TEMPLATES = (
    "Client: {client}\nWrite a {length}-word {format} based on the brief below. Tone: {tone}. "
    "Audience: {audience}. Use {k} subheadings and end with a call to action.\n\nBrief:\n{brief}",
    "We need a {format} for {client} ({audience}). About {length} words, {tone} tone.\n"
    "Brief from the client: {brief}",
    "Rewrite this brief into a {format} for {client}'s blog. Keep it {tone}, about {length} "
    "words, SEO-friendly, with a meta description at the end.\n\n{brief}",
)
CLIENTS = ("Northwind Outdoor", "Bloom Dental", "Kestrel Finance", "Arbor Coffee",
           "Quantum Fitness", "Harbor Realty", "Lumos Skincare", "Vega Logistics")
FORMATS = ("blog post", "LinkedIn post", "newsletter", "landing page", "product description",
           "press release")
TONES = ("friendly", "professional", "playful", "authoritative", "warm")
AUDIENCES = ("small-business owners", "young parents", "IT managers", "first-time buyers",
             "fitness beginners", "students")


class ContentAgency(Population):
    """A marketing agency's writers: templated briefs during office hours, one office."""

    NAME = "content_agency"
    HEAVY = True
    DEFAULTS = {"accounts": 5, "briefs_per_day": 25}

    def setup(self):
        rng, world = self.rng, self.world
        self._network = HomeNetwork(rng, world.networks.pick(rng, "business", "GB"), 2,
                                    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) "
                                    "AppleWebKit/605.1.15 Safari/605.1.15", same_subnet=True)
        self._curve = DailyCurve(OFFICE_DAY, country_offset("GB"))
        self.new_team(self.knobs["accounts"], country="GB", signup_channel="self_serve",
                      email_domain="brightline-content.co.uk", tier="tier-3")
        self._briefs: list[str] = []
        return self.accounts

    def _brief(self) -> str | None:
        if not self._briefs:
            session = self.world.pools.take("legit", "general")
            if session is None:
                return None
            # A brief is a user request or a passage of text the client wants turned into copy.
            self._briefs = [t.text[:1200] for t in session.turns if t.role == "user"] + [
                p for t in session.turns if t.role == "assistant"
                for p in t.text.split("\n\n") if len(p) > 200][:8]
        return self._briefs.pop()

    def plan_day(self, day: int, sink: EventSink) -> None:
        world, rng = self.world, self.rng
        if is_weekend(world.window.day_start(day) + 43_200) and rng.random() < 0.8:
            return  # the office is closed most weekends
        for account in self.accounts:
            for _ in range(poisson(rng, self.knobs["briefs_per_day"])):
                brief = self._brief()
                if brief is None:
                    return
                prompt = rng.choice(TEMPLATES).format(
                    client=rng.choice(CLIENTS), length=rng.choice((400, 600, 800, 1200)),
                    format=rng.choice(FORMATS), tone=rng.choice(TONES),
                    audience=rng.choice(AUDIENCES), k=rng.randint(2, 5), brief=brief)
                ts = self._curve.sample(rng, world.window.day_start(day))
                client = self._network.client(rng, day)
                reply = world.reply(rng, rng.randint(1500, 6000))
                model = world.models.for_legit(rng, day)

                def render(account=account, prompt=prompt, ts=ts, client=client, reply=reply,
                           model=model) -> dict:
                    return build_exchange(
                        ts=ts, account_id=account.account_id, api_key_id=account.api_keys[0],
                        model=model, client=client,
                        messages=[{"role": "user", "content": prompt}], temperature=0.8,
                        max_tokens=3000, reply=reply, include_reply=world.include_replies,
                    )

                sink.add(ts, account, render)
