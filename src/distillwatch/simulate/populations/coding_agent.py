"""Many independent developers using the same open-source coding agent.

The hard negative for template linking: every one of them sends the same long system prompt and
the same tool schemas, but they are different people with their own payments, networks, time
zones, working hours and tasks.
"""

from __future__ import annotations

import random

from distillwatch.simulate.clock import HUMAN_DAY, OFFICE_DAY, DailyCurve
from distillwatch.simulate.events import EventSink
from distillwatch.simulate.network import country_offset, pick_country
from distillwatch.simulate.populations.agent import plan_agent_run
from distillwatch.simulate.populations.base import HomeNetwork, Population, weighted
from distillwatch.simulate.populations.chat import ChatParams

AGENT_SYSTEM_PROMPT = """You are OpenCoder, an interactive command-line agent that helps \
developers \
with software engineering tasks in their own repository.

# Working rules
- Read the relevant files before you change them; never guess a file's content.
- Prefer small, reviewable edits. Keep the project's style, naming and formatting.
- Run the project's tests or linters after a change when a command for them is known.
- Never commit, push, or delete files unless the user asks you to.
- Explain what you changed in two or three sentences when you finish; no long summaries.

# Tools
Use the tools to inspect and change the workspace. Paths are relative to the repository root.
When a command fails, read its output and fix the cause instead of retrying blindly.

# Safety
Refuse to write code that is clearly malicious. Do not print secrets found in files or the \
environment.
"""

def _tool(name: str, description: str, properties: dict, required: list[str]) -> dict:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": properties, "required": required},
    }}

AGENT_TOOLS = (
    _tool("read_file", "Read a file of the workspace.",
          {"path": {"type": "string"}, "offset": {"type": "integer"},
           "limit": {"type": "integer"}}, ["path"]),
    _tool("edit_file", "Replace an exact string in a file.",
          {"path": {"type": "string"}, "old": {"type": "string"}, "new": {"type": "string"}},
          ["path", "old", "new"]),
    _tool("write_file", "Create or overwrite a file.",
          {"path": {"type": "string"}, "content": {"type": "string"}}, ["path", "content"]),
    _tool("run_command", "Run a shell command in the repository and return its output.",
          {"command": {"type": "string"}, "timeout_s": {"type": "integer"}}, ["command"]),
    _tool("search_code", "Search the repository with a regular expression.",
          {"pattern": {"type": "string"}, "glob": {"type": "string"}}, ["pattern"]),
    _tool("list_directory", "List a directory.", {"path": {"type": "string"}}, ["path"]),
)
AGENT_VERSIONS = ("1.3.9", "1.4.0", "1.4.1", "1.4.2")
_OUTPUTS = (
    "All tests passed (42 passed in 3.1s)", "FAILED tests/test_api.py::test_login - AssertionError",
    "src/\n  app.py\n  models.py\n  utils/\ntests/\nREADME.md\npyproject.toml",
    "error TS2345: Argument of type 'string' is not assignable to parameter of type 'number'.",
    "Edited 1 file: 3 insertions(+), 1 deletion(-)", "No matches found.",
)

def _tool_result(session_replies: list[str]):
    def make(rng: random.Random, name: str, arguments: dict) -> str:
        if name in ("read_file", "search_code") and session_replies:
            text = rng.choice(session_replies)
            return text[: rng.randint(200, 2000)]
        return rng.choice(_OUTPUTS)
    return make

class CodingAgentDevelopers(Population):
    """Independent developers, each running the same open-source coding agent."""

    NAME = "coding_agent_devs"
    HEAVY = True
    DEFAULTS = {"accounts": 60, "sessions_mean": 3.0, "steps": (3, 14)}

    def setup(self):
        rng, world = self.rng, self.world
        self._plans: dict[int, list] = {}
        for _ in range(self.knobs["accounts"]):
            n = max(1, int(rng.expovariate(1 / self.knobs["sessions_mean"]) + 0.5))
            sessions = [s for s in (world.pools.take("legit", "code") for _ in range(n)) if s]
            if not sessions:
                break
            country = pick_country(rng)
            account = self.new_account(
                country=country,
                signup_channel=weighted(rng, {"self_serve": 0.75, "education": 0.1,
                                              "startup_program": 0.1, "enterprise": 0.05}),
                verified=rng.random() < 0.5,
                tier=weighted(rng, {"tier-1": 0.4, "tier-2": 0.4, "tier-3": 0.2}),
            )
            kind = weighted(rng, {"residential": 0.55, "business": 0.35, "mobile": 0.05,
                                  "hosting": 0.05})
            system = world.networks.pick(rng, kind, country if kind != "hosting" else "*")
            agent = f"opencoder/{rng.choice(AGENT_VERSIONS)} node/20.19.0"
            network = HomeNetwork(rng, system, rng.randint(1, 3), agent)
            curve = DailyCurve(OFFICE_DAY if rng.random() < 0.6 else HUMAN_DAY,
                               country_offset(country))
            params = ChatParams(system=AGENT_SYSTEM_PROMPT, temperature=0.0,
                                max_tokens=rng.choice((8192, 16384)), stream=True)
            for session in sessions:
                day = rng.randrange(world.window.days)
                self._plans.setdefault(day, []).append(
                    (account, session, network, curve, params))
        return self.accounts

    def plan_day(self, day: int, sink: EventSink) -> None:
        world, rng = self.world, self.rng
        for account, session, network, curve, params in self._plans.pop(day, ()):
            users = [t.text for t in session.turns if t.role == "user"][:4]
            replies = [t.text for t in session.turns if t.role == "assistant"]
            plan_agent_run(
                world, sink, rng, account, tools=AGENT_TOOLS, user_turns=users,
                final_replies=replies, start=curve.sample(rng, world.window.day_start(day)),
                client_for=lambda network=network, day=day: network.client(rng, day),
                model=world.models.for_legit(rng, day), params=params,
                steps=self.knobs["steps"], tool_result=_tool_result(replies),
            )
