"""BFCL (Berkeley Function-Calling Leaderboard): tool-use prompts with function schemas.

Only the non-live ``bfcl_eval/data/BFCL_v4_*.json`` files at the top of ``data/`` are read;
each holds one JSON object per line. BFCL writes parameter types in its own vocabulary
(``"dict"``, ``"float"``, Java's ``"HashMap"`` ...); they are mapped to JSON Schema types the
way BFCL's own OpenAI handler does, so the schemas can be sent as OpenAI tools.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from distillwatch.exceptions import DistillwatchDataError
from distillwatch.simulate.text.ordering import natural_key
from distillwatch.simulate.text.records import ToolTask
from distillwatch.simulate.text.wheel import Wheel

logger = logging.getLogger(__name__)

BFCL_DIR = "bfcl_eval/data/"
BFCL_PREFIX = "BFCL_v4_"

# bfcl_eval/constants/type_mappings.py: GORILLA_TO_OPENAPI, plus two spellings that occur in
# the data ("Boolean", and an empty type).
JSON_SCHEMA_TYPES: dict[str, str] = {
    "integer": "integer", "number": "number", "float": "number", "string": "string",
    "boolean": "boolean", "bool": "boolean", "array": "array", "list": "array",
    "dict": "object", "object": "object", "tuple": "array", "any": "string", "byte": "integer",
    "short": "integer", "long": "integer", "double": "number", "char": "string",
    "ArrayList": "array", "Array": "array", "HashMap": "object", "Hashtable": "object",
    "Queue": "array", "Stack": "array", "Any": "string", "String": "string",
    "Bigint": "integer", "Boolean": "boolean", "": "string",
}


def normalise_types(schema: Any) -> Any:
    """A copy of ``schema`` with every string ``"type"`` mapped to a JSON Schema type.

    Args:
        schema: A BFCL function or parameter schema (nested dicts and lists).

    Returns:
        The same structure; ``{"type": "dict"}`` becomes ``{"type": "object"}``, ``"float"``
        becomes ``"number"`` and so on. Unknown type names are kept.
    """
    if isinstance(schema, dict):
        return {
            key: (JSON_SCHEMA_TYPES.get(value, value)
                  if key == "type" and isinstance(value, str) else normalise_types(value))
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [normalise_types(item) for item in schema]
    return schema


def user_turns(question: Any) -> tuple[str, ...]:
    """The user text of each turn of a BFCL ``question``.

    Args:
        question: A list of turns, each a list of ``{"role", "content"}`` messages.

    Returns:
        One text per turn (its user messages joined by newlines); turns without user text
        (BFCL's "a function was added here" turns) are skipped.
    """
    turns = []
    for turn in question or ():
        messages = turn if isinstance(turn, list) else [turn]
        texts = [m["content"] for m in messages
                 if isinstance(m, dict) and m.get("role") == "user"
                 and isinstance(m.get("content"), str) and m["content"].strip()]
        if texts:
            turns.append("\n".join(texts))
    return tuple(turns)


def bfcl_files(wheel: Wheel) -> list[str]:
    """The BFCL prompt files to read.

    Args:
        wheel: The opened ``bfcl-eval`` wheel.

    Returns:
        The non-live ``BFCL_v4_*.json`` paths at the top level of ``bfcl_eval/data/``.
    """
    return [
        name for name in wheel.names(BFCL_DIR + BFCL_PREFIX, ".json")
        if "/" not in name[len(BFCL_DIR):]
        and not name[len(BFCL_DIR) + len(BFCL_PREFIX):].startswith("live")
    ]


def _records(text: str, source: str) -> list[dict[str, Any]] | None:
    """The JSON-lines records of one file, or None if it is not a file of prompts."""
    try:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as error:
        try:
            json.loads(text)
        except json.JSONDecodeError:
            raise DistillwatchDataError(f"Malformed JSON lines: {error.msg}",
                                        source=source) from error
        return None  # one JSON document: an index (format_sensitivity), not prompts
    if not all(isinstance(r, dict) and "id" in r and "question" in r for r in rows):
        return None
    return rows


def read_bfcl(wheel: Wheel) -> tuple[ToolTask, ...]:
    """Every non-live BFCL prompt, sorted by task id.

    Args:
        wheel: The opened ``bfcl-eval`` wheel.

    Returns:
        One :class:`ToolTask` per record; ``functions`` is empty where BFCL supplies the
        tools by class name instead of schemas (memory, web search, multi-turn).

    Raises:
        DistillwatchDataError: If a prompt file is malformed.
    """
    tasks = []
    for name in bfcl_files(wheel):
        rows = _records(wheel.read_text(name), name)
        if rows is None:
            logger.info("BFCL: skipped %s (not a file of prompts)", name)
            continue
        category = name[len(BFCL_DIR) + len(BFCL_PREFIX):-len(".json")]
        for row in rows:
            functions = row.get("function") or ()
            tasks.append(ToolTask(
                task_id=str(row["id"]),
                category=category,
                user_turns=user_turns(row["question"]),
                functions=tuple(normalise_types(f) for f in functions if isinstance(f, dict)),
            ))
    return tuple(sorted(tasks, key=lambda t: natural_key(t.task_id)))
