"""The Arrow layout of Exchange records: how Parquet logs are written and what fingerprinting reads.

Arrow has no union types, so the two free-form parts of the Exchange schema get one form each:
message content is text (a list of parts becomes its text parts joined by newlines, other
parts named like ``[image_url]``), and a tool's JSON ``parameters`` are JSON text.
``to_arrow`` puts JSON records into this layout; Parquet logs written by other tools in it
are read as they are.

The three wire formats say the same things in different shapes, and the layout gives each
one shape, so a scaffold has one fingerprint whichever API it was sent through:

- tools are Chat Completions' ``{"type", "function": {"name", "description",
  "parameters"}}``: the Responses API's flat function tools and Anthropic's ``{"name",
  "description", "input_schema"}`` are put in that shape, and built-in tools (web search, code
  execution, ...) keep their type and name, their settings as parameters;
- Anthropic returns tool results in a user turn of ``tool_result`` parts; Chat Completions
  in ``tool`` messages. In the layout they are ``tool`` messages, and the user turn keeps
  only its other parts (none left: no user turn).
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
import pyarrow as pa
import pyarrow.compute as pc

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


def _json_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


# Keys of a flat tool that are not its settings: what it is, and transport hints
# (Anthropic's prompt-cache marker, OpenAI's strict-schema switch).
_TOOL_KEYS = frozenset({"type", "name", "description", "parameters", "input_schema", "strict",
                        "cache_control"})


def _tool(tool: object) -> object:
    """A tool in Chat Completions' shape (see the module's docstring)."""
    if not isinstance(tool, dict):
        return tool
    function = tool.get("function")
    if isinstance(function, dict):
        if isinstance(function.get("parameters"), str | None):
            return tool
        return {**tool, "function": {**function,
                                     "parameters": _json_text(function["parameters"])}}
    schema = tool.get("parameters", tool.get("input_schema"))
    if schema is None:
        schema = {k: v for k, v in tool.items() if k not in _TOOL_KEYS} or None
    kind = tool.get("type")
    return {"type": "function" if kind in (None, "custom") else kind,
            "function": {"name": tool.get("name"), "description": tool.get("description"),
                         "parameters": _json_text(schema)}}


def _is_tool_result(part: object) -> bool:
    return isinstance(part, dict) and part.get("type") == "tool_result"


def is_user_turn(message: object) -> bool:
    """True for a message the layout keeps as a user turn: a user message holding more than
    Anthropic tool results."""
    if not isinstance(message, dict) or message.get("role") != "user":
        return False
    content = message.get("content")
    return not isinstance(content, list) or not content or not all(
        _is_tool_result(part) for part in content)


def _laid_out(message: object) -> list:
    """A message as the layout's messages (an Anthropic user turn of tool results becomes
    ``tool`` messages and what else it holds)."""
    if not isinstance(message, dict) or isinstance(message.get("content"), str | None):
        return [message]
    content = message["content"]
    if message.get("role") != "user" or not any(_is_tool_result(p) for p in content):
        return [{**message, "content": text_of(content)}]
    turns = [{"role": "tool", "tool_call_id": part.get("tool_use_id"),
              "content": text_of(part.get("content"))}
             for part in content if _is_tool_result(part)]
    rest = [part for part in content if not _is_tool_result(part)]
    return turns + ([{**message, "content": text_of(rest)}] if rest else [])


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
        changed["messages"] = [turn for m in messages for turn in _laid_out(m)]
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


def timestamps(strings: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """RFC 3339 timestamps (``timestamp`` as the layout holds it) as UTC microseconds: any
    case of ``T`` / ``Z`` and fractions finer than a microsecond (a nanosecond clock's
    ``.123456789``) are read too, the fraction cut to microseconds."""
    upper = pc.utf8_upper(strings)
    cut = pc.replace_substring_regex(upper, r"([.][0-9]{6})[0-9]+", r"\1")
    return pc.cast(cut, pa.timestamp("us", tz="UTC"))


def to_arrow(records: Iterable[dict]) -> pa.Table:
    """Exchange records (validated JSON objects) as a table in the Arrow layout.

    Raises:
        pyarrow.ArrowException: If a field has a type the layout cannot hold.
    """
    return pa.Table.from_pylist([canonical(r) for r in records], schema=EXCHANGE_ARROW_SCHEMA)
