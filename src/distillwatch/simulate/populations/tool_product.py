"""Tool-calling products: a browser agent and a function-calling assistant, on cloud egress."""

from __future__ import annotations

import random

from distillwatch.simulate.clock import GLOBAL_PRODUCT_DAY, OFFICE_DAY, DailyCurve, poisson
from distillwatch.simulate.content import attack_side
from distillwatch.simulate.events import EventSink
from distillwatch.simulate.populations.agent import plan_agent_run
from distillwatch.simulate.populations.base import Population, ServiceNetwork
from distillwatch.simulate.populations.chat import ChatParams
from distillwatch.simulate.populations.coding_agent import _tool

BROWSER_SYSTEM_PROMPT = (
    "You are Pilot, a web automation assistant. You control a browser through tools. "
    "Complete the user's task on the given websites. Observe the page before acting, act one "
    "step at a time, and finish with the answer the user asked for. Never enter payment "
    "details or passwords."
)
BROWSER_TOOLS = (
    _tool("goto", "Open a URL.", {"url": {"type": "string"}}, ["url"]),
    _tool("click", "Click an element by its id on the current page.",
          {"element_id": {"type": "integer"}}, ["element_id"]),
    _tool("type_text", "Type text into an element.",
          {"element_id": {"type": "integer"}, "text": {"type": "string"}},
          ["element_id", "text"]),
    _tool("scroll", "Scroll the page.", {"direction": {"type": "string",
                                                       "enum": ["up", "down"]}}, ["direction"]),
    _tool("read_page", "Return the accessibility tree of the current page.", {}, []),
)
ASSISTANT_SYSTEM_PROMPT = (
    "You are the assistant of the Helix data platform. Use the provided functions when they "
    "answer the request; otherwise reply directly and briefly."
)


def _page(rng: random.Random, name: str, arguments: dict) -> str:
    items = " ".join(f"[{rng.randint(100, 999)}] link '{w}'" for w in
                     rng.sample(("Orders", "Reports", "Customers", "Catalog", "Reviews",
                                 "Issues", "Merge requests", "Forums", "Settings"), 4))
    return f"RootWebArea 'Dashboard' focused: True {items}"


def _function_result(rng: random.Random, name: str, arguments: dict) -> str:
    return f'{{"result": {rng.randint(1, 10_000)}, "unit": "ok"}}'


class ToolProduct(Population):
    """Two products built on tool calling; their requests come from their cloud backends."""

    NAME = "tool_product"
    HEAVY = True
    DEFAULTS = {"browser_tasks_per_day": 60, "function_calls_per_day": 300}

    def setup(self):
        rng, world = self.rng, self.world
        org = world.ids.organization()
        self._browser = self.new_account(country="US", signup_channel="enterprise",
                                         organization_id=org, verified=True, tier="scale")
        self._assistant = self.new_account(country="DE", signup_channel="startup_program",
                                           organization_id=world.ids.organization(),
                                           verified=True, tier="tier-3")
        self._browser_net = ServiceNetwork(rng, world.networks.pick(rng, "hosting"), 3,
                                           "pilot-backend/5.1 aiohttp/3.10")
        self._assistant_net = ServiceNetwork(rng, world.networks.pick(rng, "hosting", "DE"), 2,
                                             "helix-api/2.0 OpenAI/Python 1.99.1")
        self._intents = world.corpus.webarena
        self._functions = [t for t in world.corpus.bfcl
                           if not attack_side(t.task_id) and t.functions
                           and t.category in ("simple_python", "multiple", "parallel")]
        return self.accounts

    def plan_day(self, day: int, sink: EventSink) -> None:
        world, rng = self.world, self.rng
        curve = DailyCurve(GLOBAL_PRODUCT_DAY, -5.0)
        browser = ChatParams(system=BROWSER_SYSTEM_PROMPT, temperature=0.2, max_tokens=2048)
        for _ in range(poisson(rng, self.knobs["browser_tasks_per_day"])):
            intent = rng.choice(self._intents)
            plan_agent_run(
                world, sink, rng, self._browser, tools=BROWSER_TOOLS, user_turns=[intent.intent],
                final_replies=(), start=curve.sample(rng, world.window.day_start(day)),
                client_for=lambda: self._browser_net.client(rng, day),
                model=world.models.main, params=browser, steps=(3, 12),
                tool_result=_page, step_gap=(2.0, 8.0),
            )
        assistant = ChatParams(system=ASSISTANT_SYSTEM_PROMPT, temperature=0.0, max_tokens=512)
        office = DailyCurve(OFFICE_DAY, 1.0)
        for _ in range(poisson(rng, self.knobs["function_calls_per_day"])):
            task = rng.choice(self._functions)
            tools = [{"type": "function", "function": f} for f in task.functions]
            plan_agent_run(
                world, sink, rng, self._assistant, tools=tools, user_turns=task.user_turns[:1],
                final_replies=(), start=office.sample(rng, world.window.day_start(day)),
                client_for=lambda: self._assistant_net.client(rng, day),
                model=world.models.mini, params=assistant, steps=(1, 2),
                tool_result=_function_result, step_gap=(0.3, 1.5),
            )
