"""Masked skeletons: a prompt with its variable parts replaced by typed placeholders.

Two prompts built from one template differ in their payloads — numbers, names, quoted text,
code, URLs — and agree in the frame around them. Masking the payload-like spans makes the
frames comparable, and the masked text is what reports may show instead of customers' prompts.

Examples (input -> skeleton):
    "Solve: Leah had 32 chocolates"        -> "Solve: Leah had <NUM> chocolates"
    "see https://x.io/a?b=1 or mail a@b.co" -> "see <URL> or mail <EMAIL>"
    'Translate "Bonjour" into English'     -> 'Translate <QUOTE> into English'
    "```python\\nprint(1)\\n```"             -> "<CODE>"
"""

from __future__ import annotations

import re

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"```.*?(?:```|\Z)", re.DOTALL), "<CODE>"),
    (re.compile(r"https?://\S+|www\.\S+"), "<URL>"),
    (re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b"), "<EMAIL>"),
    (re.compile(r"\"[^\"\n]{1,400}\"|“[^”\n]{1,400}”|«[^»\n]{1,400}»"), "<QUOTE>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
                re.IGNORECASE), "<ID>"),
    (re.compile(r"\b\d+(?:[.,:/-]\d+)*\b"), "<NUM>"),
    (re.compile(r"[ \t]+"), " "),
)
# A line much longer than a frame line is payload (a pasted document, a task statement).
PAYLOAD_LINE_WORDS = 60


def mask(text: str) -> str:
    """The masked skeleton of ``text`` (payload-like spans replaced by placeholders)."""
    for pattern, placeholder in _RULES:
        text = pattern.sub(placeholder, text)
    return text.strip()


def skeleton_lines(text: str, masked: str | None = None) -> list[str]:
    """Masked, non-empty lines, with very long lines collapsed to ``<TEXT>``.

    Frames are made of short instruction lines; payloads are long. Keeping the short lines
    and collapsing the long ones leaves the scaffold of a templated prompt.

    Args:
        text: The prompt.
        masked: ``mask(text)`` if the caller already has it.
    """
    lines = []
    for raw in (masked if masked is not None else mask(text)).splitlines():
        line = raw.strip()
        if not line:
            continue
        lines.append("<TEXT>" if len(line.split()) > PAYLOAD_LINE_WORDS else line)
    return lines


def masked_excerpt(text: str, limit: int = 160, lines: list[str] | None = None) -> str:
    """A short masked excerpt safe to show in reports (never raw prompt text)."""
    skeleton = " / ".join(lines if lines is not None else skeleton_lines(text))
    return skeleton if len(skeleton) <= limit else skeleton[: limit - 1] + "…"
