"""A model-evaluation vendor: exact benchmark sweeps, step-by-step prompts, temperature 0.

A hard negative for chain-of-thought, sweep-coverage and model-pivot signals: it runs every
benchmark on every model, including a new model on the day it is released, but it repeats the
same prompts run after run and works from a few verified accounts.
"""

from __future__ import annotations

import random

from distillwatch.simulate.clock import DAY, HOUR
from distillwatch.simulate.events import EventSink
from distillwatch.simulate.exchange import build_exchange
from distillwatch.simulate.populations.base import Population, ServiceNetwork

HUMANEVAL_PROMPT = (
    "Complete the following Python function. Think step by step about the specification and "
    "the examples, then give the complete implementation in a single code block.\n\n{task}"
)
MTBENCH_PREFIX = "Let's think step by step. "


class EvaluationVendor(Population):
    """Sweeps public benchmarks against every available model for its clients."""

    NAME = "eval_vendor"
    HEAVY = True
    DEFAULTS = {"accounts": 3, "sweeps_per_day": 1.0, "concurrency_gap_s": (0.2, 1.2)}

    def setup(self):
        rng, world = self.rng, self.world
        self.new_team(self.knobs["accounts"], country="GB", email_domain="evalworks.ai",
                      tier="scale", keys=2)
        self._network = ServiceNetwork(rng, world.networks.pick(rng, "hosting"), 4,
                                       "lm-eval-harness/0.4.13 python-httpx/0.28.1")
        corpus = world.corpus
        english = [w for w in corpus.wrappers if w.language == "en"] or list(corpus.wrappers)
        self._suites: dict[str, list[list[str]]] = {
            "humaneval": [[HUMANEVAL_PROMPT.format(task=t.prompt)] for t in corpus.humaneval],
            "mt_bench": [[MTBENCH_PREFIX + q.turns[0], *q.turns[1:]] for q in corpus.mtbench],
            "cot_fewshot": [
                [english[i % len(english)].template.replace("{task}", q.question)]
                for i, q in enumerate(corpus.fewshot)
            ],
        }
        return self.accounts

    def _sweep(self, sink: EventSink, rng: random.Random, start: float, model: str,
               suite: str, account) -> None:
        world = self.world
        key = rng.choice(account.api_keys)
        ts = start
        for turns in self._suites[suite]:
            history: list[dict] = []
            for text in turns:
                history.append({"role": "user", "content": text})
                snapshot, client = list(history), self._network.client(rng, 0)
                reply = world.reply(rng, rng.randint(600, 3000))

                def render(snapshot=snapshot, client=client, ts=ts, reply=reply) -> dict:
                    return build_exchange(
                        ts=ts, account_id=account.account_id, api_key_id=key, model=model,
                        client=client, messages=snapshot, temperature=0.0, max_tokens=2048,
                        n=1, reply=reply, include_reply=world.include_replies,
                    )

                sink.add(ts, account, render)
                history.append({"role": "assistant",
                                "content": world.history_text(rng, reply)})
                ts += rng.uniform(*self.knobs["concurrency_gap_s"])

    def plan_day(self, day: int, sink: EventSink) -> None:
        world, rng = self.world, self.rng
        models = world.models.available(day)
        runs = []
        if day == world.models.release_day:
            # A new model: every client wants every benchmark on it the same day.
            runs += [(world.models.new, suite, account)
                     for suite in self._suites for account in self.accounts]
        draws = int(self.knobs["sweeps_per_day"]) + (
            rng.random() < self.knobs["sweeps_per_day"] % 1)
        for _ in range(draws):
            runs.append((rng.choice(models), rng.choice(list(self._suites)),
                         rng.choice(self.accounts)))
        for model, suite, account in runs:
            start = world.window.day_start(day) + rng.uniform(1, 20) * HOUR
            self._sweep(sink, rng, min(start, world.window.day_start(day) + DAY - HOUR),
                        model, suite, account)
