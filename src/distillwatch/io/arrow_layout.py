"""The Arrow layout of Exchange records: how Parquet logs are written and what fingerprinting reads.

Arrow has no union types, so the two free-form parts of the Exchange schema get one form each:
message content is text (a list of parts becomes its text parts joined by newlines, other
parts named like ``[image_url]``), and a tool's JSON ``parameters`` are JSON text.
``to_arrow`` puts JSON records into this layout; Parquet logs written by other tools in it
are read as they are.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
import pyarrow as pa

_FUNCTION_CALL = pa.struct([("name", pa.string()), ("arguments", pa.string())])
_TOOL_CALL = pa.struct([("id", pa.string()), ("type", pa.string()), ("function", _FUNCTION_CALL)])
_MESSAGE = pa.struct([
    ("role", pa.string()),
    ("content", pa.string()),
    ("tool_call_id", pa.string()),
    ("tool_calls", pa.list_(_TOOL_CALL)),
])
_TOOL = pa.struct([
    ("type", pa.string()),
    ("function", pa.struct([
        ("name", pa.string()), ("description", pa.string()), ("parameters", pa.string()),
    ])),
])
EXCHANGE_ARROW_SCHEMA = pa.schema([
    ("exchange_id", pa.string()),
    ("timestamp", pa.string()),
    ("account_id", pa.string()),
    ("api_key_id", pa.string()),
    ("model", pa.string()),
    ("operation", pa.string()),
    ("client", pa.struct([
        ("ip", pa.string()), ("asn", pa.int64()), ("asn_kind", pa.string()),
        ("country", pa.string()), ("user_agent", pa.string()),
    ])),
    ("request", pa.struct([
        ("system", pa.string()),
        ("messages", pa.list_(_MESSAGE)),
        ("tools", pa.list_(_TOOL)),
        ("max_tokens", pa.int64()),
        ("temperature", pa.float64()),
        ("top_p", pa.float64()),
        ("n", pa.int64()),
        ("logprobs", pa.bool_()),
        ("top_logprobs", pa.int64()),
        ("stream", pa.bool_()),
        ("reasoning", pa.struct([("enabled", pa.bool_()), ("budget_tokens", pa.int64())])),
    ])),
    ("response", pa.struct([
        ("text", pa.string()), ("finish_reason", pa.string()),
        ("status", pa.int64()), ("error_type", pa.string()),
    ])),
    ("usage", pa.struct([
        ("input_tokens", pa.int64()), ("output_tokens", pa.int64()),
        ("reasoning_tokens", pa.int64()),
    ])),
])
STRUCT_FIELDS = ("client", "request", "response", "usage")


# Part types whose ``text`` is the message's text: Chat Completions and Anthropic ``text``,
# the Responses API's ``input_text`` / ``output_text``.
TEXT_PARTS = frozenset({"text", "input_text", "output_text"})


def text_of(content: object) -> str:
    """Message content as text: strings as they are, text parts joined, other parts named."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                parts.append(part.get("text") if part.get("type", "text") in TEXT_PARTS
                             else f"[{part.get('type', 'part')}]")
        return "\n".join(p for p in parts if p)
    return ""


def _tool(tool: object) -> object:
    function = tool.get("function") if isinstance(tool, dict) else None
    if isinstance(function, dict) and not isinstance(function.get("parameters"), str | None):
        function = {**function, "parameters": orjson.dumps(
            function["parameters"], option=orjson.OPT_SORT_KEYS).decode()}
        return {**tool, "function": function}
    return tool


def canonical(record: dict) -> dict:
    """``record`` in the Arrow layout's forms (content as text, tool parameters as JSON text).

    Returns a new dict when anything changes; the input is not modified.
    """
    request = record.get("request")
    if not isinstance(request, dict):
        return record
    messages = request.get("messages")
    changed = {}
    if isinstance(messages, list) and any(
            isinstance(m, dict) and not isinstance(m.get("content"), str | None) for m in messages):
        changed["messages"] = [{**m, "content": text_of(m.get("content"))}
                               if isinstance(m, dict) else m for m in messages]
    if not isinstance(request.get("system"), str | None):
        changed["system"] = text_of(request["system"])
    tools = request.get("tools")
    if isinstance(tools, list) and tools:
        converted = [_tool(t) for t in tools]
        if any(a is not b for a, b in zip(converted, tools, strict=True)):
            changed["tools"] = converted
    if not changed:
        return record
    return {**record, "request": {**request, **changed}}


def to_arrow(records: Iterable[dict]) -> pa.Table:
    """Exchange records (validated JSON objects) as a table in the Arrow layout.

    Raises:
        pyarrow.ArrowException: If a field has a type the layout cannot hold.
    """
    return pa.Table.from_pylist([canonical(r) for r in records], schema=EXCHANGE_ARROW_SCHEMA)
