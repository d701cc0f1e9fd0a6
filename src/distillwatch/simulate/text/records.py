"""The record types the simulator reads: one frozen dataclass per kind of real text.

Every collection is a tuple, so a loaded :class:`~distillwatch.simulate.text.corpus.Corpus`
cannot be changed by the code that draws from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Turn:
    """One message of a chat.

    Args:
        role: ``"user"`` or ``"assistant"``.
        text: The message text.
    """

    role: str
    text: str


@dataclass(frozen=True)
class Session:
    """A real multi-turn conversation (ShareGPT), chunks merged, roles normalised.

    Args:
        session_id: The ShareGPT share id (the record id without its ``_k`` chunk suffix).
        turns: Alternating turns, starting with a user turn.
        language: ISO 639-1 code of the user text, as identified by py3langid.
    """

    session_id: str
    turns: tuple[Turn, ...]
    language: str


@dataclass(frozen=True)
class CodingTask:
    """A HumanEval problem.

    Args:
        task_id: E.g. ``"HumanEval/0"``.
        prompt: Signature and docstring to complete.
        entry_point: Name of the function to implement.
    """

    task_id: str
    prompt: str
    entry_point: str


@dataclass(frozen=True)
class BenchQuestion:
    """An MT-bench question.

    Args:
        question_id: The question number, as text.
        category: E.g. ``"writing"``, ``"reasoning"``, ``"math"``.
        turns: The user turns (two for MT-bench).
    """

    question_id: str
    category: str
    turns: tuple[str, ...]


@dataclass(frozen=True)
class ToolTask:
    """A BFCL function-calling prompt with its function schemas.

    Args:
        task_id: The BFCL id, e.g. ``"simple_python_0"``.
        category: The file stem without ``BFCL_v4_``, e.g. ``"simple_python"``.
        user_turns: One text per conversation turn (the user messages of that turn, joined).
        functions: Function schemas (``name``, ``description``, ``parameters``) with JSON
            Schema types; empty for categories that ship no schemas (memory, web search,
            multi-turn).
    """

    task_id: str
    category: str
    user_turns: tuple[str, ...]
    functions: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class SupportTask:
    """A tau2 customer-support scenario, as the simulated customer knows it.

    Args:
        task_id: The tau2 task id within its domain.
        reason_for_call: Why the customer calls.
        known_info: What the customer knows (name, ids); may be empty.
        task_instructions: How the customer behaves during the call.
    """

    task_id: str
    reason_for_call: str
    known_info: str
    task_instructions: str


@dataclass(frozen=True)
class SupportDomain:
    """A tau2 customer-support domain: one policy, fixed tools, many callers.

    Args:
        name: ``"airline"`` or ``"retail"``.
        policy: The agent policy (Markdown), used as the system prompt.
        tools: OpenAI-style function tools built from the domain's toolkit.
        tasks: The customer scenarios.
    """

    name: str
    policy: str
    tools: tuple[dict[str, Any], ...]
    tasks: tuple[SupportTask, ...]


@dataclass(frozen=True)
class WebIntent:
    """A WebArena-Verified browser task.

    Args:
        task_id: The WebArena task id, as text.
        intent: The instantiated instruction.
        intent_template: The template it was generated from (``{{slot}}`` placeholders).
        intent_template_id: Id shared by every intent of one template.
        sites: The web sites the task runs on.
    """

    task_id: str
    intent: str
    intent_template: str
    intent_template_id: int
    sites: tuple[str, ...]


@dataclass(frozen=True)
class PromptWrapper:
    """A prompt wrapper from lm-eval that elicits step-by-step reasoning.

    Args:
        source: Path of the YAML file inside the lm-eval wheel.
        template: The wrapper, with exactly one ``{task}`` placeholder.
        language: Language code from the file name where it carries one (``_fr``, ``_swa``),
            else identified from the wrapper's own text.
        kind: ``"cot"``.
    """

    source: str
    template: str
    language: str
    kind: str


@dataclass(frozen=True)
class FewShotQuestion:
    """A few-shot exemplar from an lm-eval task configuration.

    Args:
        source: Path of the YAML file inside the lm-eval wheel.
        question: The question (with its context or options where the exemplar has them).
        answer: The exemplar's target (often a worked, step-by-step answer), if any.
    """

    source: str
    question: str
    answer: str | None
