"""Elicitation cues, on phrasings other than the simulator's own frames."""

from __future__ import annotations

import pytest

from distillwatch.fingerprint.elicitation import detect

COT = [
    "Q: A farmer has 17 sheep... A: Let's think step by step.",
    "Please reason through this carefully and show your work before the final answer.",
    "Résous ce problème étape par étape.",
    "Resuelve el siguiente problema paso a paso y explica tu razonamiento.",
    "请一步一步地思考，然后给出答案。",
    "次の問題をステップバイステップで解いてください。",
    "다음 문제를 단계별로 풀어 주세요.",
    "Put your scratch work in <thinking> tags, then answer.",
    "Write out your complete thought process, including intermediate steps.",
]
GRADING = [
    "Please act as an impartial judge and evaluate the quality of the response below.",
    "Rate the assistant's answer on a scale of 1 to 10 and justify the rating.",
    "Which response is better, A or B? Explain.",
    "Score this completion for helpfulness using the rubric.",
]
TOOL_TRACE = [
    "Use the tools. Format: Thought: ... Action: ... Action Input: ... Observation: ...",
    "Solve with the functions and narrate each tool call, then write out the full trajectory.",
]
PLAIN = [
    "What's the capital of Australia?",
    "Write a haiku about autumn leaves.",
    "Fix the bug in this function: def f(x): return x +",
    "Translate 'good morning' into German.",
    "Summarise the attached meeting notes in three bullet points.",
]


@pytest.mark.parametrize("prompt", COT)
def test_reasoning_trace_requests(prompt):
    result = detect(prompt)
    assert result.cot and not result.grading


@pytest.mark.parametrize("prompt", GRADING)
def test_grading_requests(prompt):
    assert detect(prompt).grading


@pytest.mark.parametrize("prompt", TOOL_TRACE)
def test_tool_trace_requests(prompt):
    assert detect(prompt, has_tools=True).tool_trace


@pytest.mark.parametrize("prompt", PLAIN)
def test_ordinary_requests_show_nothing(prompt):
    assert not detect(prompt, has_tools=True).any


def test_reasoning_budget_counts_and_system_prompt_is_read():
    assert detect("hi", reasoning_requested=True).cot
    assert detect("2+2?", system="Always think step by step.").cot
