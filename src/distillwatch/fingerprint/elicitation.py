"""What a request tries to draw out of the model besides an answer.

Three kinds of elicitation matter for distillation:
- ``cot``: the written-out reasoning trace (chain of thought), in many languages;
- ``grading``: a judgement of a response, as a reward model or an LLM judge gives it;
- ``tool_trace``: a narrated agent trajectory (thought / action / observation) around tools.

Cues are phrase patterns; one cue is weak evidence (people ask "step by step" too), which is
why they are profiled per account over time and combined with other signals downstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import re2

# RE2 matches in linear time and is roughly ten times faster than `re` on these alternations;
# the patterns are written in the syntax both accept (no backreferences or lookarounds).
_OPTIONS = re2.Options()
_DOTALL = re2.Options()
_DOTALL.dot_nl = True


def _compile(pattern: str, dotall: bool = False):
    return re2.compile(pattern, _DOTALL if dotall else _OPTIONS)

_STEP_BY_STEP = (
    r"step[ -]by[ -]step|one step at a time|étape par étape|paso a paso|schritt für schritt|"
    r"passo a passo|passo dopo passo|stap voor stap|krok po kroku|adım adım|шаг за шагом|"
    r"từng bước|langkah demi langkah|hatua kwa hatua|خطوة بخطوة|चरण दर चरण|"
    r"一步一步|逐步|ステップバイステップ|段階的に|順を追って|단계별로|차근차근"
)
COT = _compile(
    rf"{_STEP_BY_STEP}|chain[ -]of[ -]thought|\blet'?s think\b|think (?:it )?through|"
    r"think (?:carefully|hard|deeply) (?:about|before)|(?:show|explain|write out|expose|reveal)"
    r" (?:all of |me )?(?:your|the) (?:full |complete |entire |detailed )?"
    r"(?:reasoning|work|working|thinking|thought process|derivation)|"
    r"reasoning (?:trace|steps|process|chain)|intermediate (?:steps|reasoning)|"
    r"thought process|<\s*(?:thinking|reasoning|think|scratchpad)\s*>|"
    r"before (?:giving|stating|writing) (?:the|your) (?:final )?answer|"
    r"reason (?:carefully|through|about it)|walk (?:me )?through (?:your|the) (?:reasoning|logic)|"
    r"razonamiento|raisonnement|begründ|推理过程|思考过程|思路|推論|추론 과정",
)
GRADING = _compile(
    r"\b(?:rate|score|grade|judge|evaluate|assess|critique)\b[^.\n]{0,60}\b(?:response|answer|"
    r"output|completion|reply|assistant)s?\b|on a scale (?:of|from) \d+ to \d+|"
    r"\b\d+\s*(?:-|to)\s*10 scale|impartial judge|reward model|preference (?:label|data)|"
    r"which (?:response|answer|completion) is better|\b(?:response|answer) [ab]\b.*\b"
    r"(?:response|answer) [ab]\b|rubric|score:\s*\[?\[?x|\[\[rating\]\]|rating: \[\[",
    dotall=True,
)
TOOL_TRACE = _compile(
    r"\bthought\s*[,:/].{0,40}\baction\b|\baction input\b|\bobservation\b.{0,40}\bthought\b|"
    r"\breact\b (?:format|style|loop)|(?:full|complete|entire|whole) (?:trajectory|trace)|"
    r"trajector(?:y|ies)|narrat\w* (?:each|every) (?:step|decision|tool call|action)|"
    r"(?:before|after) (?:every|each) (?:tool|function) call|"
    r"(?:explain|justify) (?:why|how) (?:you|each) (?:chose|choose|call)",
    dotall=True,
)
# Frames sit at the start and the end of a prompt; a long payload in between is not scanned.
EDGE_CHARS = 1500


@dataclass(frozen=True)
class Elicitation:
    """Which kinds of elicitation a request shows."""

    cot: bool
    grading: bool
    tool_trace: bool

    @property
    def any(self) -> bool:
        return self.cot or self.grading or self.tool_trace


def _edges(text: str) -> str:
    if len(text) <= 2 * EDGE_CHARS:
        return text.lower()
    return f"{text[:EDGE_CHARS]}\n{text[-EDGE_CHARS:]}".lower()


def _scan(text: str, tools: bool) -> tuple[bool, bool, bool]:
    low = _edges(text)
    return (bool(COT.search(low)), bool(GRADING.search(low)),
            (tools or "tool" in low) and bool(TOOL_TRACE.search(low)))


@lru_cache(maxsize=4096)
def _scan_system(system: str, tools: bool) -> tuple[bool, bool, bool]:
    # System prompts repeat across thousands of requests: judge each once.
    return _scan(system, tools)


def detect(prompt: str, system: str | None = None, *, has_tools: bool = False,
           reasoning_requested: bool = False) -> Elicitation:
    """Elicitation cues of one request.

    Args:
        prompt: The last user message (the part a script varies).
        system: The system prompt, where frames often live.
        has_tools: Whether the request carries tool definitions.
        reasoning_requested: Whether the request enables a reasoning budget / thinking.
    """
    cot, grading, trace = _scan(prompt, has_tools)
    if system:
        s_cot, s_grading, s_trace = _scan_system(system, has_tools)
        cot, grading, trace = cot or s_cot, grading or s_grading, trace or s_trace
    return Elicitation(cot=reasoning_requested or cot, grading=grading, tool_trace=trace)
