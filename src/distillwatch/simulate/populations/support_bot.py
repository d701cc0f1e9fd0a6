"""A customer-support bot: one long system prompt, fixed tools, very high volume, cloud egress."""

from __future__ import annotations

import random
import re
import string

import orjson

from distillwatch.simulate.clock import GLOBAL_PRODUCT_DAY, DailyCurve, poisson
from distillwatch.simulate.events import EventSink
from distillwatch.simulate.populations.agent import plan_agent_run
from distillwatch.simulate.populations.base import Population, ServiceNetwork
from distillwatch.simulate.populations.chat import ChatParams

FIRST_NAMES = ("Emma", "Liam", "Olivia", "Noah", "Ava", "Mateo", "Sofia", "Yuki", "Aarav",
               "Chen", "Fatima", "Lucas", "Amara", "Ivan", "Priya", "Omar", "Mei", "Jonas")
LAST_NAMES = ("Kim", "Garcia", "Smith", "Nguyen", "Patel", "Müller", "Rossi", "Silva", "Sato",
              "Khan", "Johnson", "Okafor", "Kowalski", "Dubois", "Lopez", "Ivanova", "Chen")
_SECOND_PERSON = ((r"\bYou are\b", "I am"), (r"\byou are\b", "I am"), (r"\bYou\b", "I"),
                  (r"\byou\b", "I"), (r"\bYour\b", "My"), (r"\byour\b", "my"),
                  (r"\byourself\b", "myself"))
_RESERVATION = re.compile(r"\b[A-Z0-9]{6}\b")
_USER_ID = re.compile(r"\b[a-z]+_[a-z]+_\d{3,5}\b")


def first_person(text: str) -> str:
    """Task instructions speak to the simulated customer; customers speak for themselves."""
    for pattern, replacement in _SECOND_PERSON:
        text = re.sub(pattern, replacement, text)
    return text


def personalise(rng: random.Random, text: str) -> str:
    """Give a task new customer names and ids so repeated issues are not repeated text."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    text = _USER_ID.sub(f"{first.lower()}_{last.lower()}_{rng.randint(1000, 9999)}", text)
    text = _RESERVATION.sub(
        lambda _: "".join(rng.choices(string.ascii_uppercase + string.digits, k=6)), text)
    return re.sub(r"\b(I am|My name is) [A-Z][a-z]+ [A-Z][a-z]+", f"\\1 {first} {last}", text)


def _tool_result(rng: random.Random, name: str, arguments: dict) -> str:
    status = rng.choice(("confirmed", "pending", "cancelled", "delivered", "processed"))
    return orjson.dumps({"tool": name, "status": status, "id": rng.randint(10_000, 99_999),
                         "amount": round(rng.uniform(20, 900), 2)}).decode()


class SupportBot(Population):
    """An airline's and a retailer's support assistants, built on tau2 domains."""

    NAME = "support_bot"
    HEAVY = True
    DEFAULTS = {"conversations_per_day": 120, "domains": ("airline", "retail")}

    def setup(self):
        rng, world = self.rng, self.world
        self._bots = []
        self._scripts: dict[str, tuple[str, list[str]]] = {}
        for domain_name in self.knobs["domains"]:
            domain = world.corpus.tau2[domain_name]
            org = world.ids.organization()
            account = self.new_account(country="US", signup_channel="enterprise",
                                       organization_id=org, verified=True, tier="scale",
                                       keys=2)
            system = world.networks.pick(rng, "hosting")
            network = ServiceNetwork(rng, system, rng.randint(2, 4),
                                     f"{domain_name}-assist/2.3 python-httpx/0.28.1")
            self._bots.append((account, domain, network))
        return self.accounts

    def _script(self, task) -> tuple[str, list[str]]:
        """The customer's opening and follow-ups for a task, in the first person (cached)."""
        script = self._scripts.get(task.task_id)
        if script is None:
            opening = first_person(f"Hi. {task.known_info} {task.reason_for_call}"
                                   .replace("\n", " "))
            followups = [first_person(s.strip())
                         for s in re.split(r"(?<=[.!?])\s+|\n+", task.task_instructions)
                         if len(s.strip()) > 20]
            script = self._scripts[task.task_id] = (opening, followups)
        return script

    def plan_day(self, day: int, sink: EventSink) -> None:
        world, rng = self.world, self.rng
        curve = DailyCurve(GLOBAL_PRODUCT_DAY, -5.0)
        for account, domain, network in self._bots:
            params = ChatParams(system=domain.policy, temperature=0.0, max_tokens=1024)
            for _ in range(poisson(rng, self.knobs["conversations_per_day"])):
                task = rng.choice(domain.tasks)
                opening, followups = self._script(task)
                opening = personalise(rng, opening)
                followups = [personalise(rng, f) for f in followups[: rng.randint(0, 3)]]
                plan_agent_run(
                    world, sink, rng, account, tools=domain.tools,
                    user_turns=[opening, *followups], final_replies=(),
                    start=curve.sample(rng, world.window.day_start(day)),
                    client_for=lambda network=network: network.client(rng, day),
                    model=world.models.main, params=params, steps=(1, 4),
                    tool_result=_tool_result, step_gap=(0.8, 3.0), user_gap=(15.0, 120.0),
                )
