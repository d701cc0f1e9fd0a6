"""Replaying an agent loop: each user turn is followed by tool calls and tool results."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

import orjson

from distillwatch.simulate.accounts import Account
from distillwatch.simulate.context import WorldContext
from distillwatch.simulate.events import EventSink
from distillwatch.simulate.exchange import build_exchange, tokens
from distillwatch.simulate.populations.chat import ChatParams

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{2,}")


def fake_arguments(rng: random.Random, parameters: dict | None, hint: str) -> dict:
    """Plausible arguments for a JSON-schema tool, drawn from words of the task."""
    words = _WORD.findall(hint)[:60] or ["item"]
    out: dict = {}
    properties = (parameters or {}).get("properties") or {}
    required = set((parameters or {}).get("required") or ())
    for name, spec in properties.items():
        if name not in required and rng.random() < 0.5:
            continue
        kind = spec.get("type") if isinstance(spec, dict) else None
        if isinstance(spec, dict) and spec.get("enum"):
            out[name] = rng.choice(spec["enum"])
        elif kind in ("integer", "number"):
            out[name] = rng.randint(1, 500)
        elif kind == "boolean":
            out[name] = rng.random() < 0.5
        elif kind == "array":
            out[name] = [rng.choice(words) for _ in range(rng.randint(1, 3))]
        elif kind == "object":
            out[name] = {rng.choice(words): rng.choice(words)}
        else:
            out[name] = " ".join(rng.choice(words) for _ in range(rng.randint(1, 3)))
    return out


def plan_agent_run(
    world: WorldContext,
    sink: EventSink,
    rng: random.Random,
    account: Account,
    *,
    tools: Sequence[dict],
    user_turns: Sequence[str],
    final_replies: Sequence[str | None],
    start: float,
    client_for: Callable[[], dict],
    model: str,
    params: ChatParams,
    steps: tuple[int, int],
    tool_result: Callable[[random.Random, str, dict], str],
    step_gap: tuple[float, float] = (1.5, 12.0),
    user_gap: tuple[float, float] = (30.0, 600.0),
) -> float:
    """Schedule an agent session; returns when it ends.

    Args:
        tools: OpenAI-style function tools sent with every request.
        user_turns: What the user asks, turn by turn.
        final_replies: The agent's final answer after each user turn (None: a bank reply).
        steps: Model calls per user turn (min, max); all but the last return a tool call.
        tool_result: Makes the text a tool returned, from (rng, tool name, arguments).
    """
    key = rng.choice(account.api_keys)
    messages: list[dict] = []
    ts = start
    call_id = 0
    for turn_index, user_text in enumerate(user_turns):
        messages.append({"role": "user", "content": user_text})
        calls = rng.randint(*steps)
        for step in range(calls):
            final = step == calls - 1
            snapshot = list(messages)
            client = client_for()
            if final:
                reply = final_replies[turn_index] if turn_index < len(final_replies) else None
                reply = reply or world.reply(rng, rng.randint(300, 2500))
                call = None
            else:
                tool = rng.choice(tools)["function"]
                arguments = fake_arguments(rng, tool.get("parameters"), user_text)
                call_id += 1
                call = {
                    "id": f"call_{call_id}",
                    "type": "function",
                    "function": {"name": tool["name"],
                                 "arguments": orjson.dumps(arguments).decode()},
                }
                reply = None

            def render(snapshot=snapshot, reply=reply, call=call, ts=ts, client=client) -> dict:
                return build_exchange(
                    ts=ts, account_id=account.account_id, api_key_id=key, model=model,
                    client=client, messages=snapshot, system=params.system, tools=list(tools),
                    operation=params.operation, max_tokens=params.max_tokens,
                    temperature=params.temperature, stream=params.stream,
                    reply=reply, include_reply=world.include_replies,
                    reply_tokens=None if reply else tokens(call["function"]["arguments"]) + 12,
                    finish_reason=None if reply else "tool_calls",
                )

            sink.add(ts, account, render)
            if final:
                messages.append({"role": "assistant",
                                 "content": world.history_text(rng, reply)})
                break
            messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
            result = tool_result(rng, call["function"]["name"], arguments)
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
            ts += rng.uniform(*step_gap)
        ts += rng.uniform(*user_gap)
    return ts
