"""What every population and campaign of one world shares: clock, text, networks, ids, models."""

from __future__ import annotations

import random
from dataclasses import dataclass

from distillwatch.simulate.accounts import IdFactory
from distillwatch.simulate.clock import Window
from distillwatch.simulate.content import KINDS, ReplyBank, SessionPools
from distillwatch.simulate.exchange import CHARS_PER_TOKEN, Reply, tokens
from distillwatch.simulate.network import NetworkCatalogue
from distillwatch.simulate.text import Corpus, Session


@dataclass(frozen=True)
class Models:
    """The provider's models; ``new`` is released on ``release_day`` (a pivot opportunity)."""

    main: str = "aurora-2"
    mini: str = "aurora-2-mini"
    new: str = "aurora-3"
    release_day: int = 4

    def for_legit(self, rng: random.Random, day: int) -> str:
        """What an ordinary customer picks: the new model is adopted gradually."""
        if day >= self.release_day:
            adoption = min(0.5, 0.08 * (day - self.release_day + 1))
            if rng.random() < adoption:
                return self.new
        return self.mini if rng.random() < 0.2 else self.main

    def available(self, day: int) -> tuple[str, ...]:
        if day >= self.release_day:
            return (self.main, self.mini, self.new)
        return (self.main, self.mini)


class WorldContext:
    """Shared services of one simulated world.

    Args:
        seed: The world's seed; every random stream derives from it.
        window: The simulated days.
        corpus: Real text.
        models: The model line-up.
        include_replies: Keep response text (False for the stress preset).
    """

    def __init__(
        self,
        seed: int,
        window: Window,
        corpus: Corpus,
        models: Models,
        include_replies: bool = True,
    ) -> None:
        self.seed = seed
        self.window = window
        self.corpus = corpus
        self.models = models
        self.include_replies = include_replies
        self.ids = IdFactory(seed)
        self.networks = NetworkCatalogue()
        self.pools = SessionPools(corpus, seed)
        # Attack payloads are the opening prompts of sessions no legitimate account sends; their
        # replies become the length-matched output text of exchanges that have no real reply.
        self.attack_sessions: dict[str, list[Session]] = {
            kind: self.pools.drain("attack", kind) for kind in KINDS
        }
        self.replies = ReplyBank([
            turn.text
            for sessions in self.attack_sessions.values()
            for session in sessions
            for turn in session.turns
            if turn.role == "assistant"
        ])

        # Payload spaces per (capability, language), built on first use and shared by campaigns;
        # and how much of each space campaigns with partitioned coverage have claimed.
        self.payload_spaces: dict[tuple[str, str], object] = {}
        self.payload_claimed: dict[tuple[str, str], int] = {}

    def reply(self, rng: random.Random, approx_chars: int) -> Reply:
        """A length-matched reply; only its length when the world keeps no reply text."""
        if not self.include_replies:
            return Reply(None, max(1, int(approx_chars / CHARS_PER_TOKEN)))
        text = self.replies.reply(rng, approx_chars)
        return Reply(text, tokens(text))

    def history_text(self, rng: random.Random, reply: str | Reply) -> str:
        """What a client keeps of an earlier reply in its history (a short excerpt when the
        world keeps no reply text)."""
        if isinstance(reply, str):
            return reply
        return reply.text if reply.text is not None else self.replies.reply(rng, 160)

    def rng(self, *names: object) -> random.Random:
        """An independent random stream for one named part of the world."""
        return random.Random(":".join([str(self.seed), *map(str, names)]))
