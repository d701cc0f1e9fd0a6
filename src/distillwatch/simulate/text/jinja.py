"""Turning lm-eval's Jinja ``doc_to_text`` prompts into plain ``{task}`` templates.

Only the small subset lm-eval prompt wrappers use is understood, without a Jinja engine:

- ``{{ question }}``, ``{{question.strip()}}``, ``{{ input | trim }}``: a placeholder;
- ``{{"Question: "+question+"\\nAnswer:"}}``: string literals concatenated with placeholders;
- one top-level ``{% if ... %}A{% else %}B{% endif %}``: each branch is a candidate, the
  ``else`` branch first (in lm-eval's MGSM it is the zero-shot prompt, the ``if`` branch the
  few-shot form).

Anything else (``{% for %}``, ``{% set %}``, comments) yields no candidate.
"""

from __future__ import annotations

import ast
import re

PLACEHOLDER = "{task}"

_EXPRESSION = re.compile(r"\{\{-?(?P<expr>.*?)-?\}\}", re.DOTALL)
_IF_ELSE = re.compile(
    r"^\s*\{%-?\s*if\b.*?-?%\}(?P<then>.*?)"
    r"(?:\{%-?\s*else\s*-?%\}(?P<else>.*?))?"
    r"\{%-?\s*endif\s*-?%\}\s*$",
    re.DOTALL,
)


def split_concatenation(expression: str) -> list[str]:
    """Split a Jinja expression at top-level ``+`` signs, leaving strings and brackets whole.

    Example:
        >>> split_concatenation('"Q: "+question+"\\nA:"')
        ['"Q: "', 'question', '"\\nA:"']
    """
    parts: list[str] = []
    current: list[str] = []
    quote: str | None = None
    depth = 0
    escaped = False
    for char in expression:
        if quote is not None:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
            continue
        if char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "+" and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return parts


def _render_expression(expression: str) -> str:
    """String literals kept as text; every other operand becomes one placeholder."""
    rendered = []
    for part in split_concatenation(expression):
        literal = _string_literal(part)
        rendered.append(PLACEHOLDER if literal is None else literal)
    return "".join(rendered)


def _string_literal(part: str) -> str | None:
    if len(part) < 2 or part[0] not in "\"'" or part[-1] != part[0]:
        return None
    try:
        value = ast.literal_eval(part)
    except (SyntaxError, ValueError):
        return None
    return value if isinstance(value, str) else None


def _render(text: str) -> str | None:
    """A template without statements, expressions replaced; None if statements remain."""
    rendered = _EXPRESSION.sub(lambda m: _render_expression(m["expr"]), text)
    if "{%" in rendered or "{#" in rendered:
        return None
    return rendered.strip()


def template_candidates(text: str) -> list[str]:
    """The plain templates a ``doc_to_text`` string can render to, most faithful first.

    Args:
        text: A Jinja prompt from an lm-eval task configuration.

    Returns:
        Zero, one or two templates in which every placeholder reads ``{task}``.

    Example:
        >>> template_candidates('{{"Q: "+question+"\\nA: step by step"}}')
        ['Q: {task}\\nA: step by step']
    """
    match = _IF_ELSE.match(text)
    branches = [match["else"], match["then"]] if match else [text]
    candidates = []
    for branch in branches:
        if branch is None:
            continue
        rendered = _render(branch)
        if rendered and rendered not in candidates:
            candidates.append(rendered)
    return candidates
