"""Build one Exchange record (``shared/schema/exchange.schema.json``) from its parts."""

from __future__ import annotations

from typing import NamedTuple

import orjson

from distillwatch.simulate.clock import iso


class Reply(NamedTuple):
    """Output whose text may not be kept: its token count survives either way."""

    text: str | None
    tokens: int

CHARS_PER_TOKEN = 4.0


def tokens(text: str | None) -> int:
    """A rough token count (about four characters a token), at least 1 for non-empty text."""
    if not text:
        return 0
    return max(1, int(len(text) / CHARS_PER_TOKEN))


def message_tokens(messages: list[dict]) -> int:
    total = 0
    for message in messages:
        total += 4 + tokens(message.get("content") or "")
        for call in message.get("tool_calls") or ():
            total += tokens(call["function"]["arguments"]) + 6
    return total


def tool_tokens(tools: list[dict] | None) -> int:
    if not tools:
        return 0
    return tokens(orjson.dumps(tools).decode())


def build_exchange(
    *,
    ts: float,
    account_id: str,
    api_key_id: str,
    model: str,
    client: dict,
    messages: list[dict],
    system: str | None = None,
    tools: list[dict] | None = None,
    operation: str = "chat",
    max_tokens: int | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    n: int | None = None,
    logprobs: bool | None = None,
    top_logprobs: int | None = None,
    stream: bool | None = None,
    reasoning_budget: int | None = None,
    reply: str | Reply | None = None,
    reply_tokens: int | None = None,
    include_reply: bool = True,
    finish_reason: str | None = None,
    status: int = 200,
) -> dict:
    """One exchange; ``exchange_id`` is assigned by the writer, in time order.

    Args:
        reply: The visible output text (a real reply, or a length-matched ``Reply``).
        reply_tokens: Output tokens per choice when no reply text is kept.
        include_reply: Keep the reply text (False for the stress preset: usage only).
    """
    if isinstance(reply, Reply):
        reply, reply_tokens = reply.text, reply.tokens
    out_tokens = reply_tokens if reply_tokens is not None else tokens(reply)
    if max_tokens is not None and out_tokens >= max_tokens:
        out_tokens = max_tokens
        finish_reason = finish_reason or "length"
    choices = n or 1
    reasoning_tokens = None
    if reasoning_budget:
        reasoning_tokens = min(reasoning_budget, max(64, out_tokens * 2))
    input_tokens = tokens(system) + message_tokens(messages) + tool_tokens(tools)
    return {
        "exchange_id": "",
        "timestamp": iso(ts),
        "account_id": account_id,
        "api_key_id": api_key_id,
        "model": model,
        "operation": operation,
        "client": client,
        "request": {
            "system": system,
            "messages": messages,
            "tools": tools,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "n": n,
            "logprobs": logprobs,
            "top_logprobs": top_logprobs,
            "stream": stream,
            "reasoning": (
                {"enabled": True, "budget_tokens": reasoning_budget} if reasoning_budget else None
            ),
        },
        "response": {
            "text": reply if include_reply else None,
            "finish_reason": finish_reason or ("tool_calls" if tools and not reply else "stop"),
            "status": status,
            "error_type": None,
        },
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": out_tokens * choices,
            "reasoning_tokens": reasoning_tokens,
        },
    }
