"""Attack payloads: the tasks a distiller sends, never repeated when coverage is partitioned.

Real distillers grow a seed set of tasks into millions with instruction-evolution operations
(add a constraint, deepen, concretise, change the audience or the language) and give each
account a disjoint slice so that no prompt repeats anywhere. Here the seed tasks are real text
(benchmark items and opening prompts of ShareGPT sessions that no legitimate account sends)
and the evolution space is ``seeds x operations x parameters``, walked by a permutation.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

from distillwatch.simulate.content import attack_side
from distillwatch.simulate.context import WorldContext

CAPABILITIES = ("coding", "agentic_tool_use", "reasoning_cot", "writing", "grading", "other")

_PARAMS: dict[str, tuple[str, ...]] = {
    "constraint": (
        "run in O(n log n) time", "use no external libraries", "handle empty and malformed input",
        "be thread-safe", "stay under 50 lines", "include unit tests", "use recursion",
        "avoid floating-point error", "work for inputs of ten million items",
        "be written in a functional style", "log every decision it makes", "use only integers",
    ),
    "audience": (
        "a first-year student", "a senior engineer", "a ten-year-old", "a hiring committee",
        "a non-technical manager", "an expert reviewer", "a competitive programmer",
        "a high-school teacher",
    ),
    "language": (
        "Python", "Rust", "Go", "TypeScript", "Java", "C++", "Kotlin", "C#", "Swift", "Haskell",
        "Ruby", "Scala",
    ),
    "scenario": (
        "all quantities are doubled", "the input arrives as a stream", "the data is in a CSV file",
        "the result must be explained in a table", "two cases must be compared",
        "the answer must be proven correct", "there are conflicting requirements",
        "the budget is cut by half", "the deadline is tomorrow",
        "a similar problem was solved before",
    ),
    "extension": (
        "a proof of correctness", "a complexity analysis", "three alternative approaches",
        "edge-case analysis", "a worked numerical example", "a counter-example",
        "a generalisation to n dimensions", "a comparison with the naive method",
    ),
}
_OPERATIONS: tuple[tuple[str, str], ...] = (
    ("{task}", ""),
    ("{task}\n\nAdditional requirement: the solution must {p}.", "constraint"),
    ("{task}\n\nWrite the answer for {p}.", "audience"),
    ("{task}\n\nImplement it in {p}.", "language"),
    ("{task}\n\nNow assume that {p}.", "scenario"),
    ("Consider this task:\n{task}\n\nSolve a harder version that also requires {p}.", "extension"),
    ("{task}\n\nAlso provide {p}.", "extension"),
    ("Here is a problem.\n{task}\nRework it so that {p}, then solve it.", "scenario"),
)
RENUMBERINGS = 16
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")


@dataclass(frozen=True)
class Payload:
    """One task: the text, and (for grading) a response to be graded; tools for agentic ones."""

    capability: str
    task: str
    response: str | None = None
    tools: tuple[dict, ...] = ()
    language: str = "en"


def _renumber(text: str, variant: int) -> str:
    """Change every number in a word problem, the way synthetic-data generators do."""
    if variant == 0:
        return text
    rng = random.Random(variant)
    return _NUMBER.sub(lambda m: str(max(1, int(float(m.group()) * rng.uniform(0.5, 3.0)))),
                       text)


def _opening_capability(text: str) -> str:
    """Each opening prompt seeds exactly one capability, so two spaces never share a task."""
    if "```" in text or "code" in text.lower():
        return "coding"
    return "reasoning_cot" if attack_side(text[:200]) else "writing"


class PayloadSpace:
    """Every task one capability can give, indexed ``0..size-1``.

    Args:
        world: The world (its corpus and the attack share of ShareGPT).
        capability: One of ``CAPABILITIES``.
        language: ``"en"`` or ``"multi"`` (non-English seeds only).
    """

    def __init__(self, world: WorldContext, capability: str, language: str = "en") -> None:
        corpus = world.corpus
        seeds: list[Payload] = []
        opening = [
            (s.turns[0].text, s.language)
            for kind in (("foreign",) if language == "multi" else ("general", "code"))
            for s in world.attack_sessions[kind] if s.turns and s.turns[0].role == "user"
        ]
        if capability == "coding":
            seeds += [Payload("coding", t.prompt) for t in corpus.humaneval]
            seeds += [Payload("coding", q.user_turns[0]) for q in corpus.bfcl
                      if attack_side(q.task_id) and q.category.startswith("simple_")
                      and q.user_turns]
            seeds += [Payload("coding", text, language=lang) for text, lang in opening
                      if _opening_capability(text) == "coding"]
        elif capability == "agentic_tool_use":
            seeds += [Payload("agentic_tool_use", q.user_turns[0], tools=tuple(
                {"type": "function", "function": f} for f in q.functions))
                for q in corpus.bfcl if attack_side(q.task_id) and q.functions and q.user_turns]
        elif capability == "reasoning_cot":
            seeds += [Payload("reasoning_cot", q.question) for q in corpus.fewshot]
            seeds += [Payload("reasoning_cot", q.turns[0]) for q in corpus.mtbench
                      if q.category in ("reasoning", "math", "stem", "extraction")]
            seeds += [Payload("reasoning_cot", text, language=lang) for text, lang in opening
                      if _opening_capability(text) == "reasoning_cot"]
        elif capability == "grading":
            seeds += [
                Payload("grading", s.turns[0].text[:2000], response=s.turns[1].text[:4000],
                        language=s.language)
                for kind in ("general", "code", "foreign") for s in world.attack_sessions[kind]
                if len(s.turns) > 1 and s.turns[1].role == "assistant"
            ]
        else:
            seeds += [Payload(capability, q.turns[0]) for q in corpus.mtbench
                      if q.category in ("writing", "roleplay", "humanities")]
            seeds += [Payload(capability, text, language=lang) for text, lang in opening
                      if _opening_capability(text) == "writing"]
        if language == "multi":
            seeds = [s for s in seeds if s.language != "en"] or seeds
        unique: dict[str, Payload] = {}
        for payload in seeds:
            unique.setdefault(payload.task.strip(), payload)
        seeds = list(unique.values())
        if not seeds:
            seeds = [Payload(capability, "Explain the following concept in depth: recursion.")]
        self.capability = capability
        self.seeds = seeds
        # A variant is up to two evolution steps (0 = no step), then a renumbering; the
        # renumbering is the slowest-moving part so that small slices never need it.
        self._steps = [("{task}", "")] + [
            (template, key) for template, key in _OPERATIONS[1:]
            for _ in range(len(_PARAMS[key]))
        ]
        self._step_params = [""] + [
            _PARAMS[key][i] for _, key in _OPERATIONS[1:] for i in range(len(_PARAMS[key]))
        ]
        steps = len(self._steps)
        self.variants = RENUMBERINGS * steps * steps
        self.size = len(seeds) * self.variants

    def is_distinct(self, index: int) -> bool:
        """False for an index whose task another index already gives.

        That is a second step without a first (the same as that step alone), or a renumbering
        of a seed that has no numbers.
        """
        steps = len(self._steps)
        variant = index // len(self.seeds)
        first, second = variant % steps, (variant // steps) % steps
        if first == 0 and second != 0:
            return False
        renumber = variant // (steps * steps)
        return renumber == 0 or bool(_NUMBER.search(self.seeds[index % len(self.seeds)].task))

    def get(self, index: int) -> Payload:
        """The task at ``index`` (distinct indices give distinct tasks, see ``is_distinct``)."""
        seed = self.seeds[index % len(self.seeds)]
        variant = index // len(self.seeds)
        steps = len(self._steps)
        first, second = variant % steps, (variant // steps) % steps
        renumber = variant // (steps * steps)
        task = _renumber(seed.task, renumber)
        for step in (first, second):
            if step:
                template, _ = self._steps[step]
                task = template.format(task=task, p=self._step_params[step])
        return Payload(seed.capability, task, seed.response, seed.tools, seed.language)


class PayloadStream:
    """A campaign's walk through a payload space.

    With ``partitioned`` the campaign owns the slice ``[offset, offset + length)`` and visits
    it in a scrambled order, so no task repeats and no two campaigns share one; otherwise tasks
    are drawn at random from a small working set, and repeats happen.
    """

    def __init__(self, space: PayloadSpace, rng: random.Random, partitioned: bool,
                 offset: int, length: int) -> None:
        self.space = space
        self.rng = rng
        self.partitioned = partitioned
        self.offset = offset
        self.length = max(1, length)
        self.step = self._coprime_step(self.length, rng)
        self.position = rng.randrange(self.length)
        self.drawn = 0
        self.working_set = [rng.randrange(space.size) for _ in range(min(space.size, 400))]

    @staticmethod
    def _coprime_step(n: int, rng: random.Random) -> int:
        step = rng.randrange(1, n) if n > 2 else 1
        while math.gcd(step, n) != 1:
            step += 1
        return step

    def next(self) -> Payload:
        if not self.partitioned:
            return self.space.get(self.rng.choice(self.working_set))
        while True:
            index = self.offset + (self.position + self.drawn * self.step) % self.length
            self.drawn += 1
            if self.space.is_distinct(index) or self.drawn % self.length == 0:
                return self.space.get(index % self.space.size)
