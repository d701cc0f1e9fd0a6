"""``rejected.jsonl``: every record that could not be read, with where and why.

Prompts are customers' data, so a reject carries a masked excerpt of the record, never its
message text.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import orjson

EXCERPT_CHARS = 200
# Values of prompt-like keys, and any string long enough to be text rather than an id or an
# enum, including one cut off by the excerpt's end (an unterminated string).
_PROMPT_VALUE = re.compile(
    r'("(?:content|text|system|prompt|input|instructions|value)"\s*:\s*)"(?:[^"\\]|\\.)*(?:"|$)')
_LONG_STRING = re.compile(r'"(?:[^"\\]|\\.){40,}(?:"|$)')


def masked_excerpt(raw: bytes | str) -> str:
    """The start of a raw record with prompt-like and long string values replaced by "…"."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = _PROMPT_VALUE.sub(r'\1"…"', text[: EXCERPT_CHARS * 20])
    return _LONG_STRING.sub('"…"', text)[:EXCERPT_CHARS]


class RejectSink:
    """Appends rejects to ``rejected.jsonl`` as they happen and counts them by reason.

    Args:
        path: The rejects file (appended to; created if missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("ab")
        self.count = 0
        self.reasons: Counter[str] = Counter()

    def add(self, source: str, location: str, reason: str, field: str | None = None,
            raw: bytes | str = b"") -> None:
        self.count += 1
        self.reasons[reason.split(":")[0][:80]] += 1
        self._handle.write(orjson.dumps({
            "source": source, "location": location, "reason": reason, "field": field,
            "excerpt": masked_excerpt(raw),
        }) + b"\n")

    def flush(self) -> None:
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()
