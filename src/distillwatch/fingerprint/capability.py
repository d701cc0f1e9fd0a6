"""Which capability a request targets: coding, agentic tool use, reasoning, writing, grading.

The names are the keys of a campaign's ``capabilities`` in the scan output. Rules are checked
in order of specificity: a request with tools is agentic; a judgement request is grading; code
beats prose; maths and logic beat generic writing.
"""

from __future__ import annotations

import re2

CAPABILITIES = ("coding", "agentic_tool_use", "reasoning_cot", "writing", "grading", "other")

_CASELESS = re2.Options()
_CASELESS.case_sensitive = False

_CODE = re2.compile(
    r"```|\bdef \w+\(|\bfunction\s*\w*\s*\(|\bclass \w+|#include|\bimport \w+|\bpublic static\b|"
    r"\b(?:implement|refactor|debug|compile|unit tests?|stack trace|regex|algorithm|api "
    r"endpoint|sql query|time complexity)\b|\b(?:python|javascript|typescript|java|rust|golang|"
    r"c\+\+|c#|kotlin|swift|ruby|php|haskell|scala|bash|sql)\b",
    _CASELESS,
)
_REASONING = re2.compile(
    r"\b(?:solve|prove|calculate|compute|how many|how much|probability|equation|integral|"
    r"derivative|theorem|puzzle|riddle|logic|deduce|percent|ratio|sum of|average)\b|"
    r"\d+\s*[-+*/×÷^=]\s*\d+|[=<>≤≥]\s*\d",
    _CASELESS,
)
_WRITING = re2.compile(
    r"\b(?:write|draft|compose|rewrite|paraphrase|summari[sz]e|translate|essay|story|poem|"
    r"blog|article|e-?mail|letter|speech|slogan|outline|headline|caption|lyrics|script)\b",
    _CASELESS,
)


def capability(prompt: str, *, has_tools: bool, grading: bool) -> str:
    """The capability ``prompt`` targets (one of ``CAPABILITIES``)."""
    if has_tools:
        return "agentic_tool_use"
    if grading:
        return "grading"
    if _CODE.search(prompt):
        return "coding"
    if _REASONING.search(prompt):
        return "reasoning_cot"
    if _WRITING.search(prompt):
        return "writing"
    return "other"
