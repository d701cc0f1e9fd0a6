"""Which capability a request targets: coding, agentic tool use, reasoning, writing, grading.

The names are the keys of a campaign's ``capabilities`` in the scan output. Rules are checked
in order of specificity: a request with tools is agentic; a judgement request is grading; code
beats prose; maths and logic beat generic writing.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.fingerprint.arrays import Distinct, texts

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


def capabilities(prompts: Distinct, has_tools: np.ndarray, grading: np.ndarray) -> pa.Array:
    """The capability each prompt targets (one of ``CAPABILITIES``); each distinct prompt is
    read once."""
    values = texts(prompts.values)
    choice = np.where(has_tools, "agentic_tool_use", np.where(grading, "grading", "other")
                      ).astype(object)
    # A text rule is read only for the prompts of the rows that no earlier rule decided.
    open_rows = (choice == "other") & (prompts.index >= 0)
    for pattern, name in ((_CODE, "coding"), (_REASONING, "reasoning_cot"),
                          (_WRITING, "writing")):
        needed = np.zeros(len(values), dtype=bool)
        needed[prompts.index[open_rows]] = True
        if not needed.any():
            break
        found = np.zeros(len(values), dtype=bool)
        found[needed] = pc.match_substring_regex(values.filter(pa.array(needed)), pattern,
                                                 ignore_case=True).to_numpy(zero_copy_only=False)
        hit = open_rows & found[prompts.index]
        choice[hit] = name
        open_rows &= ~hit
    return pa.array(choice, pa.string())


def capability(prompt: str, *, has_tools: bool, grading: bool) -> str:
    """The capability ``prompt`` targets (``capabilities`` on a batch of one)."""
    return capabilities(Distinct.of(pa.array([prompt])), np.array([has_tools]),
                        np.array([grading]))[0].as_py()
