"""Capability targeted and language, on everyday prompts."""

from __future__ import annotations

import pytest

from distillwatch.fingerprint.capability import capability
from distillwatch.fingerprint.language import guess_language


@pytest.mark.parametrize("prompt, tools, grading, expected", [
    ("Book me a flight to Oslo", True, False, "agentic_tool_use"),
    ("Rate this answer from 1 to 10", False, True, "grading"),
    ("Implement a LRU cache in Rust with unit tests", False, False, "coding"),
    ("Why does my Python script raise KeyError?", False, False, "coding"),
    ("If 3x + 5 = 20, what is x?", False, False, "reasoning_cot"),
    ("How many ways can 5 people sit at a round table?", False, False, "reasoning_cot"),
    ("Write a short story about a lighthouse keeper", False, False, "writing"),
    ("Summarize the plot of Hamlet", False, False, "writing"),
    ("hello!", False, False, "other"),
])
def test_capability(prompt, tools, grading, expected):
    assert capability(prompt, has_tools=tools, grading=grading) == expected


@pytest.mark.parametrize("text, expected", [
    ("What is the best way to learn the guitar as an adult?", "en"),
    ("¿Cuál es la mejor manera de aprender a tocar la guitarra para los adultos?", "es"),
    ("Quelle est la meilleure façon d'apprendre la guitare pour les adultes ?", "fr"),
    ("Wie lernt man am besten Gitarre, wenn man nicht mehr jung ist und die Zeit fehlt?", "de"),
    ("如何作为成年人学习弹吉他？请给出建议。", "zh"),
    ("大人になってからギターを学ぶ一番の方法は何ですか？", "ja"),
    ("성인이 기타를 배우는 가장 좋은 방법은 무엇인가요?", "ko"),
    ("Как лучше всего научиться играть на гитаре взрослому?", "ru"),
    ("?!", "und"),
])
def test_language(text, expected):
    assert guess_language(text) == expected
