"""A data-labelling pipeline: one template over a stream of real texts, 24/7 batch jobs.

A hard negative for template concentration and for grading elicitation: part of its work is
rating assistant replies, as RLHF labelling vendors do.
"""

from __future__ import annotations

import random

from distillwatch.simulate.clock import HOUR, poisson
from distillwatch.simulate.events import EventSink
from distillwatch.simulate.exchange import build_exchange
from distillwatch.simulate.populations.base import Population, ServiceNetwork

LABEL_TEMPLATE = (
    "You are annotating customer conversations for a support analytics dashboard.\n"
    "Classify the text below. Return JSON with keys \"topic\" (one of: billing, technical, "
    "account, product_question, feedback, other), \"sentiment\" (negative, neutral, positive) "
    "and \"contains_pii\" (true/false). Return only the JSON.\n\nText:\n\"\"\"\n{text}\n\"\"\""
)
RATING_TEMPLATE = (
    "Rate how helpful the assistant's reply is to the user's message on a scale of 1 to 5 "
    "(1 = unhelpful, 5 = fully resolves it). Answer with the number and one short reason.\n\n"
    "User message:\n{prompt}\n\nAssistant reply:\n{reply}"
)


class LabellingPipeline(Population):
    """Annotation jobs run by a data-labelling company from its cloud workers."""

    NAME = "labelling_pipeline"
    HEAVY = True
    DEFAULTS = {"accounts": 2, "items_per_day": 400, "rating_share": 0.35}

    def setup(self):
        rng, world = self.rng, self.world
        self.new_team(self.knobs["accounts"], country="IN", email_domain="annotate.io",
                      tier="tier-4")
        self._network = ServiceNetwork(rng, world.networks.pick(rng, "hosting"), 3,
                                       "label-worker/3.2 python-requests/2.32.3")
        self._items: list[tuple[str, str]] = []
        return self.accounts

    def _next_item(self) -> tuple[str, str] | None:
        while not self._items:
            session = self.world.pools.take("legit", "general")
            if session is None:
                return None
            turns = session.turns
            for i in range(0, len(turns) - 1, 2):
                if turns[i].role == "user" and turns[i + 1].role == "assistant":
                    self._items.append(("rate", RATING_TEMPLATE.format(
                        prompt=turns[i].text[:1500], reply=turns[i + 1].text[:3000])))
            for turn in turns:
                for paragraph in turn.text.split("\n\n"):
                    if len(paragraph) > 80:
                        self._items.append(("label", LABEL_TEMPLATE.format(text=paragraph)))
            self.rng.shuffle(self._items)
        return self._items.pop()

    def plan_day(self, day: int, sink: EventSink) -> None:
        world, rng = self.world, self.rng
        for account in self.accounts:
            # Jobs run in a few batches a day, workers pulling items back to back.
            remaining = poisson(rng, self.knobs["items_per_day"] / len(self.accounts))
            while remaining > 0:
                batch = min(remaining, rng.randint(50, 300))
                remaining -= batch
                ts = world.window.day_start(day) + rng.uniform(0, 22) * HOUR
                for _ in range(batch):
                    item = self._next_item()
                    if item is None:
                        return
                    kind, prompt = item
                    self._add(sink, rng, account, ts, prompt, kind)
                    ts += rng.uniform(0.5, 4.0)

    def _add(self, sink: EventSink, rng: random.Random, account, ts: float, prompt: str,
             kind: str) -> None:
        world = self.world
        client = self._network.client(rng, 0)
        reply = (f"{rng.randint(1, 5)} - " if kind == "rate" else "") + world.replies.reply(
            rng, rng.randint(40, 160))

        def render() -> dict:
            return build_exchange(
                ts=ts, account_id=account.account_id, api_key_id=account.api_keys[0],
                model=world.models.mini, client=client,
                messages=[{"role": "user", "content": prompt}], temperature=0.0,
                max_tokens=256, reply=reply, include_reply=world.include_replies,
            )

        sink.add(ts, account, render)
