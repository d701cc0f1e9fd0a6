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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.fingerprint.arrays import Distinct, texts

# RE2 syntax (no backreferences or lookarounds), matched by Arrow's kernels on whole columns.
_STEP_BY_STEP = (
    r"step[ -]by[ -]step|one step at a time|étape par étape|paso a paso|schritt für schritt|"
    r"passo a passo|passo dopo passo|stap voor stap|krok po kroku|adım adım|шаг за шагом|"
    r"từng bước|langkah demi langkah|hatua kwa hatua|خطوة بخطوة|चरण दर चरण|"
    r"一步一步|逐步|ステップバイステップ|段階的に|順を追って|단계별로|차근차근"
)
COT = (
    rf"{_STEP_BY_STEP}|chain[ -]of[ -]thought|\blet'?s think\b|think (?:it )?through|"
    r"think (?:carefully|hard|deeply) (?:about|before)|(?:show|explain|write out|expose|reveal)"
    r" (?:all of |me )?(?:your|the) (?:full |complete |entire |detailed )?"
    r"(?:reasoning|work|working|thinking|thought process|derivation)|"
    r"reasoning (?:trace|steps|process|chain)|intermediate (?:steps|reasoning)|"
    r"thought process|<\s*(?:thinking|reasoning|think|scratchpad)\s*>|"
    r"before (?:giving|stating|writing) (?:the|your) (?:final )?answer|"
    r"reason (?:carefully|through|about it)|walk (?:me )?through (?:your|the) (?:reasoning|logic)|"
    r"razonamiento|raisonnement|begründ|推理过程|思考过程|思路|推論|추론 과정"
)
GRADING = (
    r"(?s)\b(?:rate|score|grade|judge|evaluate|assess|critique)\b[^.\n]{0,60}\b(?:response|answer|"
    r"output|completion|reply|assistant)s?\b|on a scale (?:of|from) \d+ to \d+|"
    r"\b\d+\s*(?:-|to)\s*10 scale|impartial judge|reward model|preference (?:label|data)|"
    r"which (?:response|answer|completion) is better|\b(?:response|answer) [ab]\b.*\b"
    r"(?:response|answer) [ab]\b|rubric|score:\s*\[?\[?x|\[\[rating\]\]|rating: \[\["
)
TOOL_TRACE = (
    r"(?s)\bthought\s*[,:/].{0,40}\baction\b|\baction input\b|\bobservation\b.{0,40}\bthought\b|"
    r"\breact\b (?:format|style|loop)|(?:full|complete|entire|whole) (?:trajectory|trace)|"
    r"trajector(?:y|ies)|narrat\w* (?:each|every) (?:step|decision|tool call|action)|"
    r"(?:before|after) (?:every|each) (?:tool|function) call|"
    r"(?:explain|justify) (?:why|how) (?:you|each) (?:chose|choose|call)"
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


def _edges(values: pa.Array) -> pa.Array:
    """Each text lowercased, its middle cut out when it is longer than two edges."""
    long = pc.greater(pc.utf8_length(values), 2 * EDGE_CHARS)
    if pc.any(long).as_py():
        chosen = values.filter(long)
        edges = pc.binary_join_element_wise(pc.utf8_slice_codeunits(chosen, 0, EDGE_CHARS),
                                            pc.utf8_slice_codeunits(chosen, -EDGE_CHARS), "\n")
        values = pc.replace_with_mask(values, long, edges)
    return pc.utf8_lower(values)


def _scan(values: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(cot, grading, trace pattern, trace pattern and mentions "tool") of every text."""
    low = _edges(texts(values))

    def found(pattern: str) -> np.ndarray:
        return pc.match_substring_regex(low, pattern).to_numpy(zero_copy_only=False)

    trace = found(TOOL_TRACE)
    tool_word = np.zeros(len(low), dtype=bool)
    if trace.any():
        tool_word[trace] = pc.match_substring(low.filter(pa.array(trace)), "tool").to_numpy(
            zero_copy_only=False)
    return found(COT), found(GRADING), trace, tool_word


def elicitation_flags(prompts: Distinct, systems: Distinct, has_tools: np.ndarray,
                      reasoning_requested: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cot, grading, tool_trace) of every request, as boolean arrays.

    Args:
        prompts: The last user message of each request (the part a script varies).
        systems: Each request's system prompt, where frames often live.
        Each distinct prompt and system prompt is read once.
        has_tools: Whether each request carries tool definitions.
        reasoning_requested: Whether each request enables a reasoning budget / thinking.
    """
    cot, grading, trace, tool_word = (prompts.per_row(flags, False)
                                      for flags in _scan(prompts.values))
    s_cot, s_grading, s_trace, s_tool_word = (systems.per_row(flags, False)
                                              for flags in _scan(systems.values))
    trace = (trace & (has_tools | tool_word)) | (s_trace & (has_tools | s_tool_word))
    return cot | s_cot | reasoning_requested, grading | s_grading, trace


def detect(prompt: str, system: str | None = None, *, has_tools: bool = False,
           reasoning_requested: bool = False) -> Elicitation:
    """Elicitation cues of one request (``elicitation_flags`` on a batch of one)."""
    cot, grading, trace = elicitation_flags(
        Distinct.of(pa.array([prompt])), Distinct.of(pa.array([system or None], pa.string())),
        np.array([has_tools]), np.array([reasoning_requested]))
    return Elicitation(cot=bool(cot[0]), grading=bool(grading[0]), tool_trace=bool(trace[0]))
