"""Which capability a request targets: coding, agentic tool use, reasoning, writing, grading.

The names are the keys of a campaign's ``capabilities`` in the scan output. Rules are checked
in order of specificity: a request with tools is agentic; a judgement request is grading; code
beats prose; maths and logic beat generic writing.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.fingerprint.arrays import texts

CAPABILITIES = ("coding", "agentic_tool_use", "reasoning_cot", "writing", "grading", "other")

# RE2 syntax, matched case-insensitively on whole columns.
_CODE = (
    r"```|\bdef \w+\(|\bfunction\s*\w*\s*\(|\bclass \w+|#include|\bimport \w+|\bpublic static\b|"
    r"\b(?:implement|refactor|debug|compile|unit tests?|stack trace|regex|algorithm|api "
    r"endpoint|sql query|time complexity)\b|\b(?:python|javascript|typescript|java|rust|golang|"
    r"c\+\+|c#|kotlin|swift|ruby|php|haskell|scala|bash|sql)\b"
)
_REASONING = (
    r"\b(?:solve|prove|calculate|compute|how many|how much|probability|equation|integral|"
    r"derivative|theorem|puzzle|riddle|logic|deduce|percent|ratio|sum of|average)\b|"
    r"\d+\s*[-+*/×÷^=]\s*\d+|[=<>≤≥]\s*\d"
)
_WRITING = (
    r"\b(?:write|draft|compose|rewrite|paraphrase|summari[sz]e|translate|essay|story|poem|"
    r"blog|article|e-?mail|letter|speech|slogan|outline|headline|caption|lyrics|script)\b"
)


def capabilities(prompts: pa.Array, has_tools: np.ndarray, grading: np.ndarray) -> pa.Array:
    """The capability each prompt targets (one of ``CAPABILITIES``)."""
    values = texts(prompts)

    def found(pattern: str) -> np.ndarray:
        return pc.match_substring_regex(values, pattern, ignore_case=True).to_numpy(
            zero_copy_only=False)

    choice = np.select(
        [has_tools, grading, found(_CODE), found(_REASONING), found(_WRITING)],
        ["agentic_tool_use", "grading", "coding", "reasoning_cot", "writing"], "other")
    return pa.array(choice, pa.string())


def capability(prompt: str, *, has_tools: bool, grading: bool) -> str:
    """The capability ``prompt`` targets (``capabilities`` on a batch of one)."""
    return capabilities(pa.array([prompt]), np.array([has_tools]), np.array([grading]))[0].as_py()
